"""`manage.py nextruns`: print the next fire times of a schedule, to check it before saving it.

    $ manage.py nextruns "30 2 * * *" --tz America/New_York --after 2026-03-07T12:00:00Z --count 3 --local
    2026-03-08T07:00:00Z  2026-03-08 03:00 EDT (America/New_York)
    2026-03-09T06:30:00Z  2026-03-09 02:30 EDT (America/New_York)
    2026-03-10T06:30:00Z  2026-03-10 02:30 EDT (America/New_York)

Every stdout line starts with the UTC instant, so the output pipes into `cut -d' ' -f1`.
Anything else (a stored job's description, "no more fire times") goes to stderr.
All time logic is triggers.py's: this command only parses options and prints.
"""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from scheduler_app import triggers
from scheduler_app.models import Job

# Bad input exits with 2, like argparse's own usage errors.
USAGE_ERROR = 2
MAX_COUNT = 1000
# Day names for --weekly, in the preset's numbering (0=Monday … 6=Sunday).
_DAY_NUMBERS = {
    **{name.lower(): number for number, name in enumerate(triggers.WEEKDAY_NAMES)},
    **{name[:3].lower(): number for number, name in enumerate(triggers.WEEKDAY_NAMES)},
}


def _usage_error(message: str) -> CommandError:
    return CommandError(message, returncode=USAGE_ERROR)


class Command(BaseCommand):
    help = (
        "Print the next fire times of a schedule, one per line, each starting with the ISO-8601 UTC "
        "instant (e.g. 2026-03-08T07:00:00Z). Give exactly one schedule: a cron expression, "
        "--interval, --daily, --weekly with --at, --hourly, or --job. "
        "With --job, the job's description, zone and window are printed first on stderr (each line "
        "starting with '#'), so stdout holds only fire times. Bad input exits with status 2."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "expression", nargs="?", help="A cron expression, e.g. '0 9 * * MON-FRI' or '@daily' (quote it)."
        )
        parser.add_argument(
            "--tz",
            help="IANA time zone the schedule runs in, e.g. Europe/Berlin (default UTC; for --job, the "
            "job's zone). A naive --after and the --local column use it too.",
        )
        parser.add_argument(
            "--after",
            help="Search strictly after this instant (default now), e.g. 2026-03-08T00:00:00Z or "
            "2026-03-08T00:00:00+01:00; without an offset it is a wall time in --tz.",
        )
        parser.add_argument("--count", type=int, default=10, help=f"How many fire times, 1-{MAX_COUNT} (default 10).")
        parser.add_argument("--local", action="store_true", help="Add the local time after each instant.")
        parser.add_argument(
            "--interval",
            type=int,
            metavar="SECONDS",
            help="Every SECONDS seconds of elapsed time, counted from --after (ignores DST).",
        )
        parser.add_argument("--daily", metavar="HH:MM", help="Every day at HH:MM (24-hour clock), e.g. 09:30.")
        parser.add_argument(
            "--weekly", metavar="DAYS", help="On these weekdays (0=Monday … 6=Sunday, or mon,wed), with --at."
        )
        parser.add_argument("--at", metavar="HH:MM", help="The time of day for --weekly, e.g. 10:00.")
        parser.add_argument("--hourly", metavar="MM", help="Every hour at minute MM, e.g. 30 or :30.")
        parser.add_argument(
            "--job", metavar="NAME", help="A stored job: all its triggers, calendars and window (Job.next_runs)."
        )

    def handle(self, *args, **options):
        kinds = [
            label
            for label, value in (
                ("a cron expression", options["expression"]),
                ("--interval", options["interval"]),
                ("--daily", options["daily"]),
                ("--weekly", options["weekly"]),
                ("--hourly", options["hourly"]),
                ("--job", options["job"]),
            )
            if value is not None
        ]
        if len(kinds) != 1:
            got = " and ".join(kinds) if kinds else "none"
            raise _usage_error(
                "Give exactly one schedule: a cron expression, --interval, --daily, --weekly, --hourly "
                f"or --job (got {got})."
            )
        if options["at"] is not None and options["weekly"] is None:
            raise _usage_error("--at goes with --weekly (for a daily time use --daily HH:MM).")
        count = options["count"]
        if not 1 <= count <= MAX_COUNT:
            raise _usage_error(f"--count must be between 1 and {MAX_COUNT}; got {count}.")

        if options["tz"] is not None:
            self._zone(options["tz"])  # a bad --tz is a usage error before any job is looked up
        if options["job"] is not None:
            runs, zone = self._job_runs(options, count)
        else:
            zone = self._zone("UTC" if options["tz"] is None else options["tz"])
            spec = self._spec(options)
            after = self._after(options["after"], zone)
            if spec.kind == "interval":
                # An interval counts from the moment it is created: here, --after.
                spec = triggers.TriggerSpec(kind="interval", interval_seconds=spec.interval_seconds, anchor=after)
            runs = triggers.next_runs([spec], zone, after, count)

        for instant in runs:
            line = triggers.format_utc(instant)
            if options["local"]:
                line += "  " + triggers.format_local(instant, zone)
            self.stdout.write(line)
        if len(runs) < count:
            self._note(f"# no more fire times after {len(runs)}")

    # Options -----------------------------------------------------------------------------

    def _zone(self, name: str):
        try:
            return triggers.validate_timezone(name, field="--tz")
        except triggers.ScheduleError as exc:
            raise _usage_error(f"--tz: {exc.message}") from None

    def _after(self, text: str | None, zone) -> datetime:
        if text is None:
            # Whole seconds, like a new trigger's anchor, so --interval prints round instants.
            return timezone.now().replace(microsecond=0)
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            raise _usage_error(
                f"--after: {text!r} is not an ISO-8601 date and time, e.g. 2026-03-08T00:00:00Z."
            ) from None
        # A naive value is a wall time in the zone, read by the fixed-time DST rules.
        return triggers.local_to_utc(value, zone)

    def _spec(self, options) -> triggers.TriggerSpec:
        try:
            if options["expression"] is not None:
                cron = triggers.parse_cron(options["expression"])
                return triggers.TriggerSpec(kind="cron", cron_expression=cron.expression)
            if options["interval"] is not None:
                if options["interval"] <= 0:
                    raise triggers.ScheduleError("--interval", "give a whole number of seconds above 0.")
                return triggers.TriggerSpec(kind="interval", interval_seconds=options["interval"])
            if options["daily"] is not None:
                expression = triggers.daily_cron(options["daily"])
                return triggers.TriggerSpec(kind="cron", cron_expression=expression, preset="daily")
            if options["weekly"] is not None:
                if options["at"] is None:
                    raise triggers.ScheduleError("--weekly", "needs --at HH:MM, e.g. --weekly 0,2 --at 10:00.")
                expression = triggers.weekly_cron(self._days(options["weekly"]), options["at"])
                return triggers.TriggerSpec(kind="cron", cron_expression=expression, preset="weekly")
            expression = triggers.hourly_cron(options["hourly"])
            return triggers.TriggerSpec(kind="cron", cron_expression=expression, preset="hourly")
        except triggers.ScheduleError as exc:
            raise _usage_error(f"{self._option_name(options, exc.field)}: {exc.message}") from None

    @staticmethod
    def _option_name(options, field: str) -> str:
        """The option behind a triggers.py field name, so the message names what the user typed."""
        if field == "at":
            return "--daily" if options["daily"] is not None else "--at"
        return {"cron_expression": "cron expression", "days": "--weekly", "minute": "--hourly"}.get(field, field)

    @staticmethod
    def _days(text: str) -> list[int]:
        days = []
        for item in (part.strip().lower() for part in text.split(",")):
            if item.isdigit():
                days.append(int(item))
            elif item in _DAY_NUMBERS:
                days.append(_DAY_NUMBERS[item])
            else:
                raise triggers.ScheduleError(
                    "days", f"{item!r} is not a weekday; use 0 (Monday) to 6 (Sunday) or names like mon,wed."
                )
        return days

    # Stored jobs -------------------------------------------------------------------------

    def _job_runs(self, options, count: int):
        try:
            job = Job.objects.filter(name=options["job"]).prefetch_related("triggers__calendar").first()
        except DatabaseError as exc:
            raise CommandError(f"--job: cannot read the jobs table ({exc}); run 'manage.py migrate'?") from None
        if job is None:
            raise _usage_error(f"--job: no job is named {options['job']!r}.")
        # `--tz ''` is a zone that does not exist, not "no --tz".
        zone = self._zone(job.timezone if options["tz"] is None else options["tz"])
        after = self._after(options["after"], zone)
        self._note(f"# {job.name}: {job.schedule_description()}")
        window = job.window
        if window.start_at or window.end_at or window.runs_left is not None:
            parts = []
            if window.start_at:
                parts.append(f"from {triggers.format_utc(window.start_at)}")
            if window.end_at:
                parts.append(f"until {triggers.format_utc(window.end_at)}")
            if window.runs_left is not None:
                parts.append(f"{window.runs_left} runs left")
            self._note("# window: " + ", ".join(parts))
        if job.paused:
            self._note("# paused: these runs happen only once the job is resumed")
        runs, error = job.next_runs_or_error(after=after, count=count)
        if error:
            raise CommandError(f"--job: the schedule of {job.name!r} cannot be computed: {error}")
        return runs, zone

    def _note(self, text: str) -> None:
        # Notes are not errors: write them to stderr without the red error style.
        self.stderr.write(text, style_func=lambda message: message)

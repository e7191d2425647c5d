"""When jobs fire: validation, descriptions and next fire times for every trigger kind.

This is the only module that parses cron or does local-time arithmetic (DESIGN.md, "Time").
It is pure: no database, no clock of its own. Callers pass the instant to search from,
so previews, `nextruns` and the scheduler share one code path and tests need no frozen time.

Cron means Vixie/cronie cron:
- five fields `minute hour day-of-month month day-of-week`, or six with *seconds first*
  (`*/10 * * * * *` is every ten seconds);
- `0` and `7` are Sunday, `1` is Monday; names (`MON-FRI`, `JAN,JUL`); macros (`@daily`);
  `L` (last day of the month), `W` (nearest weekday), `#` (`1#1`, the first Monday) and
  `5L` (the last Friday);
- when day-of-month and day-of-week are both restricted (neither starts with `*`), either
  one matching is enough.

DST follows cronie's cron(8). A *fixed-time* expression is one whose minute and hour fields
both do not start with `*`; every other expression is a *wildcard* one.
- fixed-time, wall time in a spring-forward gap: fires once, at the first instant after the gap;
- fixed-time, wall time repeated by a fall-back: fires once, at the first occurrence;
- wildcard: fires at every real instant whose wall time matches (both passes of a repeated
  hour), never at a wall time that does not exist.

Interval triggers count fixed elapsed seconds from an anchor and ignore DST: "every 24 hours"
drifts on the wall clock around a DST change, "daily at 09:00" does not.
"""

from __future__ import annotations

import calendar
import copy
import hashlib
import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from cron_descriptor import ExpressionDescriptor, FormatException, Options
from croniter import CroniterBadDateError, CroniterError, croniter
from django.utils.dates import MONTHS, WEEKDAYS
from django.utils.translation import get_language, gettext, gettext_lazy, ngettext, pgettext_lazy

# Every loop below is bounded: a schedule that finds nothing within these limits has no
# next fire time (the validators reject such schedules before they are saved).
MAX_CANDIDATES = 200_000
HORIZON = timedelta(days=366 * 30)
# The search ends a day and a half before datetime.max: every instant up to here can be
# shown in any zone (offsets stay within ±26 h) and stepped by the DST probes below without
# overflowing. Nothing fires later: a job whose next run would fall beyond it has none.
LAST_INSTANT = datetime(9999, 12, 30, 12, 0, tzinfo=UTC)
# The largest backward clock change the search allows for when the search starts shortly
# before a fall-back (real ones are 30 minutes to 2 hours).
_FALL_BACK_PROBE = timedelta(hours=6)

CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
CRON_FIELDS_WITH_SECONDS = ("second", *CRON_FIELDS)
# How error messages name each cron field, in the active language.
_CRON_FIELD_LABELS = {
    "second": pgettext_lazy("cron field", "second"),
    "minute": pgettext_lazy("cron field", "minute"),
    "hour": pgettext_lazy("cron field", "hour"),
    "day of month": pgettext_lazy("cron field", "day of month"),
    "month": pgettext_lazy("cron field", "month"),
    "day of week": pgettext_lazy("cron field", "day of week"),
}
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_MM = re.compile(r"^:?([0-5]?\d)$")
_QUARTZ_LAST_WEEKDAY = re.compile(r"^([0-7])L$", re.IGNORECASE)


class ScheduleError(ValueError):
    """A schedule that cannot be used; `field` names the input that is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


# Time zones ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_timezone(name: str, *, field: str = "timezone") -> ZoneInfo:
    """Return the zone for an exact IANA name; `America`, `utc ` and paths are errors."""
    if not isinstance(name, str) or name not in _zone_names():
        raise ScheduleError(
            field, gettext("%(name)s is not an IANA time zone name (e.g. Europe/Berlin).") % {"name": repr(name)}
        )
    return ZoneInfo(name)


# Cron parsing -------------------------------------------------------------------------


@dataclass(frozen=True)
class Cron:
    """A validated cron expression, normalised for croniter."""

    expression: str  # as the user wrote it (whitespace collapsed)
    normalised: str  # macros expanded, Quartz `5L` rewritten as croniter's `L5`
    has_seconds: bool
    fixed_time: bool

    def iterator(self, start: datetime) -> croniter | _EitherDay:
        parts = self.normalised.split(" ")
        day_of_month, day_of_week = parts[-3], parts[-1]
        if not day_of_month.startswith(("*", "?")) and not day_of_week.startswith(("*", "?")):
            # The OR rule, done here rather than by croniter's day_or: croniter 7 loses one
            # side when the other uses L, W or # (`0 0 1 * 1#1` skips the 1st, `0 0 15W * 1`
            # skips Mondays, `0 0 15 * 5L` never fires). "Either field matches" is exactly
            # the union of the day-of-month-only and the day-of-week-only expressions.
            by_month_day = " ".join([*parts[:-1], "*"])
            by_week_day = " ".join([*parts[:-3], "*", parts[-2], day_of_week])
            return _EitherDay([self._croniter(by_month_day, start), self._croniter(by_week_day, start)])
        return self._croniter(self.normalised, start)

    def _croniter(self, expression: str, start: datetime) -> croniter:
        # Parsing costs far more than stepping: copy a parsed prototype, then move it.
        walker = copy.copy(_prototype(expression, self.has_seconds))
        walker.set_current(start, force=True)
        return walker


@lru_cache(maxsize=4096)
def _prototype(expression: str, has_seconds: bool) -> croniter:
    # implement_cron_bug: a day field that starts with `*` (`*/2`) counts as
    # unrestricted for the OR rule, as in Vixie cron and cronie.
    return croniter(
        expression, datetime(2000, 1, 1), day_or=True, implement_cron_bug=True, second_at_beginning=has_seconds
    )


class _EitherDay:
    """Merge croniter iterators into one increasing stream, each wall time once (see Cron.iterator)."""

    def __init__(self, iterators: list[croniter]):
        self._heads: list[tuple[datetime, int]] = []
        self._iterators = iterators
        for index in range(len(iterators)):
            self._advance(index)

    def _advance(self, index: int) -> None:
        try:
            heapq.heappush(self._heads, (self._iterators[index].get_next(datetime), index))
        except CroniterBadDateError:
            pass  # this side never fires (again), e.g. `0 0 30 2 MON` has only Mondays

    def get_next(self, ret_type: type = datetime) -> datetime:
        if not self._heads:
            raise CroniterBadDateError("failed to find next date")
        wall, index = heapq.heappop(self._heads)
        self._advance(index)
        while self._heads and self._heads[0][0] == wall:  # both sides match that day
            self._advance(heapq.heappop(self._heads)[1])
        return wall


def parse_cron(expression: str, *, field: str = "cron_expression") -> Cron:
    """Validate a cron expression, naming the part that is wrong.

    >>> parse_cron("0 9 * * MON-FRI").fixed_time
    True
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ScheduleError(field, gettext("Enter a cron expression, e.g. '0 9 * * MON-FRI'."))
    text = " ".join(expression.split())
    return _parse_cron(text, field)


@lru_cache(maxsize=4096)
def _parse_cron(text: str, field: str) -> Cron:
    if text.startswith("@"):
        macro = MACROS.get(text.lower())
        if macro is None:
            known = ", ".join(sorted(MACROS))
            raise ScheduleError(
                field, gettext("Unknown macro %(macro)s; use one of %(known)s.") % {"macro": repr(text), "known": known}
            )
        parts = macro.split()
    else:
        parts = text.split(" ")
    if len(parts) not in (5, 6):
        raise ScheduleError(
            field,
            gettext(
                "A cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                "or 6 with seconds first; %(expression)s has %(count)d."
            )
            % {"expression": repr(text), "count": len(parts)},
        )
    has_seconds = len(parts) == 6
    names = CRON_FIELDS_WITH_SECONDS if has_seconds else CRON_FIELDS
    parts[-1] = ",".join(_QUARTZ_LAST_WEEKDAY.sub(lambda m: f"L{m.group(1)}", item) for item in parts[-1].split(","))
    # Check each field alone so the message can say which one is wrong.
    neutral = ["0"] * len(parts)
    neutral[-3:] = ["*", "*", "*"]
    for index, value in enumerate(parts):
        probe = list(neutral)
        probe[index] = value
        try:
            croniter(" ".join(probe), datetime(2000, 1, 1), second_at_beginning=has_seconds)
        except (CroniterError, ValueError, KeyError, IndexError):
            raise ScheduleError(
                field,
                gettext("The %(field)s field %(value)s is not valid in %(expression)s.")
                % {"field": _CRON_FIELD_LABELS[names[index]], "value": repr(value), "expression": repr(text)},
            ) from None
    minute, hour = (parts[1], parts[2]) if has_seconds else (parts[0], parts[1])
    cron = Cron(
        expression=text,
        normalised=" ".join(parts),
        has_seconds=has_seconds,
        fixed_time=not minute.startswith("*") and not hour.startswith("*"),
    )
    _check_it_fires(cron, field)
    return cron


def _check_it_fires(cron: Cron, field: str) -> None:
    """Reject expressions with no fire time, such as `0 0 30 2 *`, saying why."""
    try:
        cron.iterator(datetime(2000, 1, 1)).get_next(datetime)
        return
    except (CroniterBadDateError, CroniterError):
        pass
    raise ScheduleError(
        field,
        gettext("%(expression)s never fires: %(reason)s")
        % {"expression": repr(cron.expression), "reason": _why_never(cron)},
    )


def _why_never(cron: Cron) -> str:
    dom, month = cron.normalised.split(" ")[-3:-1]
    try:
        days = croniter(f"0 0 {dom} * *", datetime(2000, 1, 1)).expanded[2]
        months = croniter(f"0 0 * {month} *", datetime(2000, 1, 1)).expanded[3]
    except (CroniterError, ValueError):
        return gettext("no date matches it.")
    if all(isinstance(d, int) for d in days) and all(isinstance(m, int) for m in months):
        longest = max(calendar.monthrange(2000, m)[1] for m in months)  # 2000 is a leap year
        if min(days) > longest:
            month_names = ", ".join(str(MONTHS[m]) for m in sorted(months))
            return gettext("day %(day)d does not exist in %(months)s.") % {"day": min(days), "months": month_names}
    return gettext("no date matches it within 30 years.")


# Presets compile to cron ----------------------------------------------------------------


def parse_hhmm(value: str, *, field: str = "at") -> tuple[int, int]:
    match = _HHMM.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ScheduleError(
            field, gettext("%(value)s is not a time of day as HH:MM (24-hour clock).") % {"value": repr(value)}
        )
    return int(match.group(1)), int(match.group(2))


def daily_cron(at: str) -> str:
    """`daily_cron("09:30")` → `"30 9 * * *"`."""
    hour, minute = parse_hhmm(at)
    return f"{minute} {hour} * * *"


def weekly_cron(days: Iterable[int], at: str) -> str:
    """Days are 0=Monday … 6=Sunday (the preset form); `weekly_cron([0, 2], "10:00")` → `"0 10 * * 1,3"`."""
    hour, minute = parse_hhmm(at)
    days = list(days)
    # Check before sorting: sorting mixed JSON input such as [0, "1"] raises TypeError, not ScheduleError.
    if not days or any(not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6 for d in days):
        raise ScheduleError("days", gettext("Pick weekdays as numbers 0 (Monday) to 6 (Sunday)."))
    picked = sorted(set(days))
    cron_days = ",".join(str((d + 1) % 7) for d in picked)
    return f"{minute} {hour} * * {cron_days}"


def hourly_cron(minute: str | int) -> str:
    """`hourly_cron(":30")` → `"30 * * * *"`."""
    match = _MM.match(str(minute).strip())
    if not match or int(match.group(1)) > 59:
        raise ScheduleError(
            "minute", gettext("%(minute)s is not a minute past the hour (0-59, e.g. ':30').") % {"minute": repr(minute)}
        )
    return f"{int(match.group(1))} * * * *"


# Fire times ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TriggerSpec:
    """Everything triggers.py needs to know about one trigger, detached from the database.

    kind "cron": `cron_expression` (and `preset` for display);
    kind "interval": `interval_seconds` from `anchor` (the first fire time);
    kind "once": `run_at`.
    `seed` makes jitter deterministic: the same job and occurrence get the same offset.
    """

    kind: str
    cron_expression: str = ""
    interval_seconds: int | None = None
    anchor: datetime | None = None
    run_at: datetime | None = None
    preset: str = ""
    jitter_seconds: int = 0
    seed: str = ""
    excluded_dates: frozenset[date] = field(default_factory=frozenset)
    business_days_only: bool = False
    calendar_name: str = ""


@dataclass(frozen=True)
class Window:
    start_at: datetime | None = None
    end_at: datetime | None = None
    runs_left: int | None = None  # max_runs minus runs so far; None = no limit


def validate_spec(spec: TriggerSpec) -> None:
    """Raise ScheduleError naming the field if the trigger cannot be used."""
    if spec.kind == "cron":
        parse_cron(spec.cron_expression)
    elif spec.kind == "interval":
        seconds = spec.interval_seconds
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
            raise ScheduleError("interval_seconds", gettext("The interval must be a whole number of seconds above 0."))
        if spec.anchor is None:
            raise ScheduleError("interval_seconds", gettext("An interval needs a start instant to count from."))
    elif spec.kind == "once":
        if spec.run_at is None:
            raise ScheduleError("run_at", gettext("A one-off trigger needs the instant to run at."))
        _check_schedulable(spec.run_at)
    else:
        raise ScheduleError(
            "kind", gettext("%(kind)s is not a trigger kind; use cron, interval or once.") % {"kind": repr(spec.kind)}
        )
    if not isinstance(spec.jitter_seconds, int) or spec.jitter_seconds < 0:
        raise ScheduleError("jitter_seconds", gettext("Jitter must be 0 or more seconds."))


def fire_times(spec: TriggerSpec, tz: ZoneInfo, after: datetime, window: Window = Window()) -> Iterator[datetime]:
    """Yield the trigger's fire times strictly after `after`, in UTC, strictly increasing.

    Applies jitter, the exclusion calendar and the window. Ends when the trigger has no
    more fire times, after a bounded search, or at LAST_INSTANT.
    """
    _require_aware(after)
    if window.runs_left is not None and window.runs_left <= 0:
        return
    start = after
    if window.start_at is not None and window.start_at > after:
        start = window.start_at - timedelta(microseconds=1)
    if start >= LAST_INSTANT:
        return
    emitted = 0
    for instant in _jittered(spec, tz, start):
        if instant > LAST_INSTANT or (window.end_at is not None and instant > window.end_at):
            return
        if not _calendar_allows(spec, tz, instant):
            continue
        yield instant
        emitted += 1
        if window.runs_left is not None and emitted >= window.runs_left:
            return


def next_fire_time(spec: TriggerSpec, tz: ZoneInfo, after: datetime, window: Window = Window()) -> datetime | None:
    return next(fire_times(spec, tz, after, window), None)


def next_runs(
    specs: Iterable[TriggerSpec], tz: ZoneInfo, after: datetime, count: int, window: Window = Window()
) -> list[datetime]:
    """The next `count` fire times of a job: the union of its triggers, each instant once."""
    streams = [fire_times(spec, tz, after, Window(window.start_at, window.end_at)) for spec in specs]
    limit = count if window.runs_left is None else min(count, max(window.runs_left, 0))
    result: list[datetime] = []
    for instant in heapq.merge(*streams):
        if len(result) >= limit:
            break
        if not result or instant > result[-1]:
            result.append(instant)
    return result


def _require_aware(value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError("triggers.py works on aware datetimes; got a naive one.")


def _calendar_allows(spec: TriggerSpec, tz: ZoneInfo, instant: datetime) -> bool:
    if not spec.excluded_dates and not spec.business_days_only:
        return True
    local_day = instant.astimezone(tz).date()
    if spec.business_days_only and local_day.weekday() >= 5:
        return False
    return local_day not in spec.excluded_dates


def jitter_offset(seed: str, occurrence: datetime, jitter_seconds: int) -> timedelta:
    """A stable offset in [0, jitter_seconds] for one occurrence, so previews show real times."""
    if jitter_seconds <= 0:
        return timedelta(0)
    digest = hashlib.sha256(f"{seed}|{occurrence.astimezone(UTC).isoformat()}".encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % (jitter_seconds + 1))


def _jittered(spec: TriggerSpec, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Jittered fire times > after, in order: offsets only push later, by at most J seconds."""
    if spec.jitter_seconds <= 0:
        yield from _base_times(spec, tz, after)
        return
    span = timedelta(seconds=spec.jitter_seconds)
    pending: list[datetime] = []
    last: datetime | None = None
    for occurrence in _base_times(spec, tz, after - span):
        offset = jitter_offset(spec.seed, occurrence, spec.jitter_seconds)
        if offset > LAST_INSTANT - occurrence:
            continue  # it would land beyond the end of the search
        heapq.heappush(pending, occurrence + offset)
        # Later occurrences land at or after their own time, so anything before it is final.
        while pending and pending[0] <= occurrence:
            instant = heapq.heappop(pending)
            if instant > after and (last is None or instant > last):
                last = instant
                yield instant
    while pending:
        instant = heapq.heappop(pending)
        if instant > after and (last is None or instant > last):
            last = instant
            yield instant


def _base_times(spec: TriggerSpec, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    if spec.kind == "cron":
        yield from cron_times(parse_cron(spec.cron_expression), tz, after)
    elif spec.kind == "interval":
        yield from interval_times(spec.anchor, spec.interval_seconds, after)
    elif spec.kind == "once":
        if spec.run_at is not None and spec.run_at > after:
            yield spec.run_at.astimezone(UTC)
    else:
        raise ScheduleError("kind", gettext("%(kind)s is not a trigger kind.") % {"kind": repr(spec.kind)})


def interval_times(anchor: datetime, seconds: int, after: datetime) -> Iterator[datetime]:
    """anchor, anchor + s, anchor + 2s, … strictly after `after`; exact integer arithmetic."""
    _require_aware(anchor)
    step = timedelta(seconds=seconds)
    anchor = anchor.astimezone(UTC)
    end = _search_end(after)
    if after < anchor:
        current = anchor
    else:
        elapsed_us = (after - anchor) // timedelta(microseconds=1)
        steps = elapsed_us // (seconds * 1_000_000) + 1
        if step * steps > end - anchor:
            return  # the next one lies beyond the search (adding it could overflow)
        current = anchor + step * steps
    while current <= end:
        yield current
        if end - current < step:
            return
        current += step


def cron_times(cron: Cron, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Real instants (UTC) strictly after `after` at which the cron expression fires in `tz`.

    Cron matches *wall* times, so the search walks naive local wall times with croniter
    and maps each to the real instants that show it: none (a gap), one, or two (a
    repeated hour). The second pass of a repeated hour comes after later wall times of the
    first pass, so instants wait in a heap until no later wall time can produce an earlier one.
    """
    _require_aware(after)
    after = after.astimezone(UTC)
    local_after = after.astimezone(tz)
    start_wall = local_after.replace(tzinfo=None, fold=0)
    # A fall-back soon after `after` replays wall times before local_after: start that far back.
    drop = local_after.utcoffset() - (after + _FALL_BACK_PROBE).astimezone(tz).utcoffset()
    if drop > timedelta(0):
        start_wall -= drop
    # croniter's start is exclusive; step back a tick so the start wall itself is a candidate.
    tick = timedelta(seconds=1) if cron.has_seconds else timedelta(minutes=1)
    walls = cron.iterator(start_wall.replace(microsecond=0) - tick)
    pending: list[datetime] = []
    last: datetime | None = None
    end = _search_end(after)
    # A wall time shows an instant up to 14 hours (the largest UTC offset) before it: later
    # walls cannot show one before `end`, and converting them near year 9999 could overflow.
    last_wall = (end + timedelta(hours=15)).replace(tzinfo=None)
    for _ in range(MAX_CANDIDATES):
        try:
            wall = walls.get_next(datetime)
        except (CroniterBadDateError, CroniterError, OverflowError):
            break  # no more matches, or croniter stepped past year 9999
        if wall > last_wall:
            break
        floor = _earliest_instant_showing(wall, tz)
        if not pending and _steady_around(floor, tz):
            # No clock change within hours of this instant: no later wall time can show an
            # earlier instant, so it is final now (saves a croniter step per fire time).
            instant = floor
            if instant > after and (last is None or instant > last) and _shows(instant, tz, wall):
                last = instant
                yield instant
                continue
        while pending and pending[0] < floor:
            instant = heapq.heappop(pending)
            if last is None or instant > last:
                last = instant
                yield instant
        if floor > end:
            break
        for instant in _instants_for_wall(wall, tz, cron.fixed_time):
            if instant > after:
                heapq.heappush(pending, instant)
    while pending:
        instant = heapq.heappop(pending)
        if last is None or instant > last:
            last = instant
            yield instant


def _search_end(after: datetime) -> datetime:
    """Where a search from `after` stops: HORIZON later, or LAST_INSTANT if that comes first."""
    return after + HORIZON if after <= LAST_INSTANT - HORIZON else LAST_INSTANT


def local_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """A local wall time as a real instant, by the fixed-time rules.

    A wall time in a gap becomes the first instant after the gap; a repeated one, its first pass.
    `local_to_utc(datetime(2026, 3, 8, 2, 30), ZoneInfo("America/New_York"))` → 07:00 UTC.
    """
    if wall.tzinfo is not None:
        return wall.astimezone(UTC)
    return _instants_for_wall(wall, tz, fixed_time=True)[0]


def _steady_around(instant: datetime, tz: ZoneInfo) -> bool:
    """True when the zone's offset is the same from 6 hours before to 6 hours after."""
    return (instant - _FALL_BACK_PROBE).astimezone(tz).utcoffset() == (instant + _FALL_BACK_PROBE).astimezone(
        tz
    ).utcoffset()


def _to_utc(wall: datetime, tz: ZoneInfo, fold: int) -> datetime:
    return wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)


def _shows(instant: datetime, tz: ZoneInfo, wall: datetime) -> bool:
    return instant.astimezone(tz).replace(tzinfo=None) == wall


def _earliest_instant_showing(wall: datetime, tz: ZoneInfo) -> datetime:
    """A lower bound for every instant whose wall time is `wall` or later."""
    return min(_to_utc(wall, tz, 0), _to_utc(wall, tz, 1))


def _instants_for_wall(wall: datetime, tz: ZoneInfo, fixed_time: bool) -> list[datetime]:
    first, second = _to_utc(wall, tz, 0), _to_utc(wall, tz, 1)
    if first == second:
        return [first]
    if _shows(first, tz, wall) and _shows(second, tz, wall):
        # A repeated wall time (fall back): fold=0 is the first pass.
        return [first] if fixed_time else [first, second]
    # A wall time in a gap (spring forward). PEP 495: fold=0 reads it with the offset
    # before the change, fold=1 with the offset after; the change lies between the two.
    return [_gap_end(min(first, second), max(first, second), tz)] if fixed_time else []


def _gap_end(low: datetime, high: datetime, tz: ZoneInfo) -> datetime:
    """The instant the clock jumped: the first instant after the gap."""
    target = high.astimezone(tz).utcoffset()
    lo, hi = 0, int((high - low).total_seconds())
    while lo < hi:
        mid = (lo + hi) // 2
        if (low + timedelta(seconds=mid)).astimezone(tz).utcoffset() == target:
            hi = mid
        else:
            lo = mid + 1
    return low + timedelta(seconds=lo)


# Descriptions -------------------------------------------------------------------------


# cron_descriptor's own catalogues, chosen from Django's active language.
_DESCRIPTOR_LOCALES = {"zh-hans": "zh_CN", "zh-cn": "zh_CN", "zh-hant": "zh_TW", "zh-tw": "zh_TW"}


def describe_cron(expression: str) -> str:
    """`describe_cron("0 9 * * 1-5")` → "At 09:00, Monday through Friday" (in the active language)."""
    cron = parse_cron(expression)
    options = Options()
    options.use_24hour_time_format = True
    options.day_of_week_start_index_zero = True
    language = (get_language() or "en").lower()
    options.locale_code = _DESCRIPTOR_LOCALES.get(language, "en_US")
    # cron_descriptor does not know macros: describe `@daily` as the `0 0 * * *` it stands for.
    text = MACROS.get(cron.expression.lower(), cron.expression)
    try:
        described = ExpressionDescriptor(text, options).get_description()
    except (FormatException, Exception):  # the describer is cosmetic: never fail on it
        return f"cron {cron.expression}"
    if options.locale_code != "en_US":
        # Its catalogues translate the phrases but leave day and month names in English.
        for english, local in _translated_names():
            described = re.sub(rf"\b{english}\b", local, described)
    return described


def _translated_names() -> list[tuple[str, str]]:
    names = [(english, str(translated)) for english, translated in zip(WEEKDAY_NAMES, WEEKDAYS.values(), strict=True)]
    return names + [(calendar.month_name[number], str(translated)) for number, translated in MONTHS.items()]


_UNITS = (
    (86400, lambda n: ngettext("%(n)d day", "%(n)d days", n)),
    (3600, lambda n: ngettext("%(n)d hour", "%(n)d hours", n)),
    (60, lambda n: ngettext("%(n)d minute", "%(n)d minutes", n)),
    (1, lambda n: ngettext("%(n)d second", "%(n)d seconds", n)),
)
_SINGLE_UNITS = {
    86400: gettext_lazy("Every day"),
    3600: gettext_lazy("Every hour"),
    60: gettext_lazy("Every minute"),
    1: gettext_lazy("Every second"),
}


def describe_interval(seconds: int) -> str:
    """`describe_interval(5400)` → "Every 1 hour 30 minutes"; `describe_interval(3600)` → "Every hour"."""
    if seconds in _SINGLE_UNITS:
        return str(_SINGLE_UNITS[seconds])
    parts = []
    for size, words in _UNITS:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(words(amount) % {"n": amount})
    return gettext("Every %(duration)s") % {"duration": " ".join(parts)}


def _preset_description(spec: TriggerSpec) -> str | None:
    fields = spec.cron_expression.split()
    if len(fields) != 5:
        return None
    minute, hour, _day, _month, dow = fields
    if spec.preset == "hourly":
        return gettext("Every hour at :%(minute)02d") % {"minute": int(minute)}
    time_of_day = f"{int(hour):02d}:{int(minute):02d}"
    if spec.preset == "daily":
        return gettext("Every day at %(time)s") % {"time": time_of_day}
    if spec.preset == "weekly":
        days = [str(WEEKDAYS[(int(d) - 1) % 7]) for d in dow.split(",")]
        return gettext("Every %(days)s at %(time)s") % {"days": ", ".join(days), "time": time_of_day}
    return None


def describe(spec: TriggerSpec, tz: ZoneInfo) -> str:
    """A trigger in words (the active language), 24-hour clock, with its zone where wall time matters."""
    if spec.kind == "cron":
        try:
            text = _preset_description(spec) if spec.preset else None
        except (ValueError, IndexError):
            text = None
        text = f"{text or describe_cron(spec.cron_expression)} ({tz.key})"
    elif spec.kind == "interval":
        text = describe_interval(spec.interval_seconds or 0)
        if spec.anchor is not None:
            text += gettext(", counted from %(start)s") % {"start": format_local(spec.anchor, tz)}
    elif spec.run_at:
        text = gettext("Once at %(when)s") % {"when": format_local(spec.run_at, tz)}
    else:
        text = gettext("Once")
    if spec.jitter_seconds:
        text += gettext(", up to %(seconds)ss later (jitter)") % {"seconds": spec.jitter_seconds}
    if spec.business_days_only:
        text += gettext(", business days only")
    if spec.calendar_name:
        text += gettext(", skipping the dates of calendar '%(name)s'") % {"name": spec.calendar_name}
    return text


def format_local(instant: datetime, tz: ZoneInfo) -> str:
    """`2026-03-08 03:00 EDT (America/New_York)`: always the zone, so nothing is ambiguous."""
    local = instant.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({tz.key})"


def format_utc(instant: datetime) -> str:
    """ISO-8601 UTC with a trailing Z, seconds precision: `2026-03-08T07:00:00Z`."""
    # isoformat() prints microseconds only when there are some, as wanted; it is much
    # faster than strftime, and the scheduler formats one per missed occurrence.
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def utc_hour(instant: datetime) -> datetime:
    """The start of the UTC hour `instant` falls in: the statistics' unit of time (tallies.py)."""
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def utc_day(instant: datetime) -> date:
    """The UTC day `instant` falls in: the per-job statistics' unit of time."""
    return instant.astimezone(UTC).date()


def utc_midnight(day: date) -> datetime:
    """The instant a UTC day starts."""
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


# Trigger input as people write it ------------------------------------------------------

_PRESET_KINDS = ("daily", "weekly", "hourly")


def compile_trigger(data: dict, tz: ZoneInfo, now: datetime) -> dict:
    """Normalise one trigger as a user writes it into the fields of a Trigger row.

    Accepted shapes (extra key everywhere: `jitter_seconds`):
      {"kind": "cron", "cron_expression": "0 9 * * MON-FRI"}
      {"kind": "interval", "interval_seconds": 300}
      {"kind": "once", "run_at": "2026-12-25T00:00:00Z"}   (a naive time is local to the job)
      {"kind": "once", "delay_seconds": 60}
      {"kind": "daily", "at": "09:00"}
      {"kind": "weekly", "days": [0, 4], "at": "10:00"}      (0=Monday … 6=Sunday)
      {"kind": "hourly", "minute": 30}                       (or "at": ":30")
    Presets compile to cron and keep their name in `preset`.
    """
    if not isinstance(data, dict):
        raise ScheduleError("triggers", gettext("Each trigger must be an object with a 'kind'."))
    kind = data.get("kind") or data.get("preset") or ""
    out: dict = {"kind": kind, "cron_expression": "", "interval_seconds": None, "run_at": None, "preset": ""}
    jitter = data.get("jitter_seconds") or 0
    if not isinstance(jitter, int) or isinstance(jitter, bool) or jitter < 0:
        raise ScheduleError("jitter_seconds", gettext("Jitter must be a whole number of seconds, 0 or more."))
    out["jitter_seconds"] = jitter
    if kind in _PRESET_KINDS:
        if kind == "daily":
            expression = daily_cron(data.get("at", ""))
        elif kind == "weekly":
            days = data.get("days")
            if not isinstance(days, list):
                raise ScheduleError("days", gettext("Weekly needs 'days', a list of 0 (Monday) to 6 (Sunday)."))
            expression = weekly_cron(days, data.get("at", ""))
        else:
            expression = hourly_cron(data.get("minute", data.get("at", "")))
        out.update(kind="cron", cron_expression=expression, preset=kind)
    elif kind == "cron":
        out["cron_expression"] = parse_cron(data.get("cron_expression", "")).expression
        preset = data.get("preset") or ""
        out["preset"] = preset if preset in _PRESET_KINDS else ""
    elif kind == "interval":
        seconds = data.get("interval_seconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
            raise ScheduleError("interval_seconds", gettext("The interval must be a whole number of seconds above 0."))
        out["interval_seconds"] = seconds
    elif kind == "once":
        out["run_at"] = _once_instant(data, tz, now)
    else:
        raise ScheduleError(
            "kind",
            gettext("%(kind)s is not a trigger kind; use cron, interval, once, daily, weekly or hourly.")
            % {"kind": repr(kind)},
        )
    return out


def _check_schedulable(instant: datetime) -> None:
    if instant > LAST_INSTANT:
        raise ScheduleError(
            "run_at",
            gettext("Pick an instant before %(last)s: nothing can run later.") % {"last": format_utc(LAST_INSTANT)},
        )


def _once_instant(data: dict, tz: ZoneInfo, now: datetime) -> datetime:
    if data.get("delay_seconds") is not None:
        delay = data["delay_seconds"]
        # At least a second: a run at `now` itself is not after now, so nothing would ever fire it.
        if not isinstance(delay, int) or isinstance(delay, bool) or delay < 1:
            raise ScheduleError("delay_seconds", gettext("The delay must be a whole number of seconds, 1 or more."))
        try:
            instant = now + timedelta(seconds=delay)
        except OverflowError:
            instant = datetime.max.replace(tzinfo=UTC)
        _check_schedulable(instant)
        return instant
    raw = data.get("run_at", data.get("run_at_local"))
    if isinstance(raw, str):
        try:
            raw = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ScheduleError(
                "run_at", gettext("%(value)s is not a date and time like '2026-12-25 00:00:00'.") % {"value": repr(raw)}
            ) from None
    if not isinstance(raw, datetime):
        raise ScheduleError("run_at", gettext("A one-off trigger needs 'run_at' (a date and time) or 'delay_seconds'."))
    try:
        instant = local_to_utc(raw, tz)
    except OverflowError:  # a wall time on 9999-12-31 behind UTC
        instant = datetime.max.replace(tzinfo=UTC)
    _check_schedulable(instant)
    return instant

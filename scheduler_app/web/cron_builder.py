"""The visual cron builder's two directions: pickers → expression, expression → pickers.

Each of the five fields is picked as "every" (`*`), "every N" (`*/N`) or "these values"
(`1-5`, `0,30`). An expression the pickers cannot show (`L`, `15W`, `1#2`, `2-20/3`, a seconds
field) leaves those fields in "custom" mode, and the expression stays authoritative: the
pickers are a way to write one, triggers.py alone decides what it means.

    >>> compose({"minute": Pick("specific", values=[0, 30]), "hour": Pick("step", step=2), ...})
    '0,30 */2 * * *'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from scheduler_app import triggers


@dataclass(frozen=True)
class FieldSpec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # textual aliases, index = value - low


MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

FIELDS = (
    FieldSpec("minute", 0, 59),
    FieldSpec("hour", 0, 23),
    FieldSpec("day", 1, 31),
    FieldSpec("month", 1, 12, MONTH_NAMES),
    FieldSpec("weekday", 0, 6, DAY_NAMES),
)
MODES = ("every", "step", "specific", "custom")
_NUMBER = re.compile(r"^\d+$")


@dataclass
class Pick:
    mode: str = "every"
    step: int | None = None
    values: list[int] = field(default_factory=list)
    raw: str = "*"  # the field as written, for "custom"


def _value(token: str, spec: FieldSpec) -> int | None:
    token = token.strip().upper()
    if _NUMBER.match(token):
        number = int(token)
        if spec.name == "weekday" and number == 7:
            return 0  # 7 is Sunday too
        return number if spec.low <= number <= spec.high else None
    if token in spec.names:
        return spec.low + spec.names.index(token)
    return None


def decompose_field(text: str, spec: FieldSpec) -> Pick:
    if text in ("*", "?"):
        return Pick("every", raw=text)
    if text.startswith("*/") and _NUMBER.match(text[2:]) and int(text[2:]) > 0:
        return Pick("step", step=int(text[2:]), raw=text)
    values: set[int] = set()
    for item in text.split(","):
        if "-" in item:
            first, _, last = item.partition("-")
            low, high = _value(first, spec), _value(last, spec)
            if spec.name == "weekday" and last.strip() == "7":
                high = 6 if low is not None else None
                values.add(0)
            if low is None or high is None or high < low:
                return Pick("custom", raw=text)
            values.update(range(low, high + 1))
        else:
            value = _value(item, spec)
            if value is None:
                return Pick("custom", raw=text)
            values.add(value)
    return Pick("specific", values=sorted(values), raw=text)


def decompose(expression: str) -> tuple[dict[str, Pick], str]:
    """The pickers for an expression, and a note when some of it cannot be picked.

    An invalid expression answers all-custom pickers and triggers.py's message.
    """
    try:
        cron = triggers.parse_cron(expression)
    except triggers.ScheduleError as exc:
        return {spec.name: Pick("custom", raw="") for spec in FIELDS}, exc.message
    text = triggers.MACROS.get(cron.expression.lower(), cron.expression)
    parts = text.split(" ")
    if len(parts) == 6:
        return {spec.name: Pick("custom", raw=part) for spec, part in zip(FIELDS, parts[1:])}, "seconds"
    picks = {spec.name: decompose_field(part, spec) for spec, part in zip(FIELDS, parts)}
    return picks, ""


def _ranges(values: list[int]) -> str:
    """`[1, 2, 3, 5]` → "1-3,5"."""
    values = sorted(set(values))
    out: list[str] = []
    start = prev = None
    for value in values:
        if start is None:
            start = prev = value
        elif value == prev + 1:
            prev = value
        else:
            out.append(str(start) if start == prev else f"{start}-{prev}" if prev - start > 1 else f"{start},{prev}")
            start = prev = value
    if start is not None:
        out.append(str(start) if start == prev else f"{start}-{prev}" if prev - start > 1 else f"{start},{prev}")
    return ",".join(out)


def compose_field(pick: Pick, spec: FieldSpec) -> str:
    if pick.mode == "step" and pick.step and pick.step > 0:
        return f"*/{pick.step}"
    if pick.mode == "specific":
        values = [v for v in pick.values if spec.low <= v <= spec.high]
        return _ranges(values) if values else "*"
    if pick.mode == "custom" and pick.raw.strip():
        return pick.raw.strip()
    return "*"


def compose(picks: dict[str, Pick]) -> str:
    return " ".join(compose_field(picks.get(spec.name, Pick()), spec) for spec in FIELDS)


def picks_from_data(data, prefix: str) -> dict[str, Pick]:
    """Read the pickers of one trigger form from POST data (`<prefix>-cb_minute_mode`, ...)."""
    picks: dict[str, Pick] = {}
    for spec in FIELDS:
        key = f"{prefix}-cb_{spec.name}"
        mode = data.get(f"{key}_mode", "every")
        mode = mode if mode in MODES else "every"
        step_text = (data.get(f"{key}_step") or "").strip()
        step = int(step_text) if _NUMBER.match(step_text) and int(step_text) > 0 else None
        values = []
        for item in data.getlist(key) if hasattr(data, "getlist") else data.get(key, []):
            if _NUMBER.match(str(item)):
                values.append(int(item))
        picks[spec.name] = Pick(mode, step=step, values=values, raw=data.get(f"{key}_raw", "*"))
    return picks


# What the builder template shows ---------------------------------------------------------

from django.utils.translation import gettext_lazy as _  # noqa: E402

FIELD_LABELS = {
    "minute": _("Minute"),
    "hour": _("Hour"),
    "day": _("Day of month"),
    "month": _("Month"),
    "weekday": _("Weekday"),
}
MONTH_LABELS = (
    _("Jan"),
    _("Feb"),
    _("Mar"),
    _("Apr"),
    _("May"),
    _("Jun"),
    _("Jul"),
    _("Aug"),
    _("Sep"),
    _("Oct"),
    _("Nov"),
    _("Dec"),
)
WEEKDAY_LABELS = (_("Sun"), _("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"))
# Weekdays shown Monday first; the values stay cron's (0 = Sunday).
WEEKDAY_ORDER = (1, 2, 3, 4, 5, 6, 0)


@dataclass
class PickerView:
    name: str
    label: str
    key: str  # the input name prefix, e.g. "triggers-0-cb_minute"
    pick: Pick
    options: list[tuple[int, str, bool]]


def picker_views(prefix: str, picks: dict[str, Pick]) -> list[PickerView]:
    views = []
    for spec in FIELDS:
        pick = picks[spec.name]
        if spec.name == "month":
            values = [(v, str(MONTH_LABELS[v - 1])) for v in range(1, 13)]
        elif spec.name == "weekday":
            values = [(v, str(WEEKDAY_LABELS[v])) for v in WEEKDAY_ORDER]
        else:
            values = [(v, str(v)) for v in range(spec.low, spec.high + 1)]
        chosen = set(pick.values)
        views.append(
            PickerView(
                name=spec.name,
                label=str(FIELD_LABELS[spec.name]),
                key=f"{prefix}-cb_{spec.name}",
                pick=pick,
                options=[(value, label, value in chosen) for value, label in values],
            )
        )
    return views


_SOURCE = re.compile(r"^(triggers-\d+)-(cb_[a-z]+(?:_mode|_step)?|cron_expression)$")


def sync(data, source: str) -> tuple[str, str]:
    """Bring one trigger's expression and pickers together after the user changed `source`.

    A picker changed: write the expression into `data` and answer ("expression", prefix);
    the expression changed: answer ("pickers", prefix), to redraw the pickers from it;
    anything else: ("", "").
    """
    match = _SOURCE.match(source or "")
    if not match:
        return "", ""
    prefix, name = match.groups()
    if name == "cron_expression":
        return "pickers", prefix
    data[f"{prefix}-cron_expression"] = compose(picks_from_data(data, prefix))
    return "expression", prefix

"""`acudevice comfort`: the comfortable maxima acudevice remembers, per point.

A "too strong" during a session lowers the point's maximum; later sessions ask for a
confirmation before going above it, or run under it with `run --at-comfort`. Here a person
sees them, and sets or forgets one by hand with a reason that is logged with who and when.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from typing import Annotated

import typer
from rich.table import Table

from acudevice.cli.common import CAP_KPA, out, reports_errors
from acudevice.errors import InputError, Problem
from acudevice.numbers import Span
from acudevice.plan.devices import FRACTION_TO_PERMILLE, KPA_TO_PA, format_level
from acudevice.plan.library import load_points
from acudevice.store import Journal, check_participant
from acudevice.store.models import ComfortChange, RememberedComfort

app = typer.Typer(
    help="Your comfortable maximum per point: list, set or reset one (with a logged reason).",
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

INTENSITY = Span(0, 1, "(intensity 0-1)", low_open=True)
"""A vibration pad's maximum: a fraction of full intensity."""

Participant = Annotated[
    str | None,
    typer.Option(
        "--participant", metavar="ID", help="a study participant's maxima (default: your own)"
    ),
]
Vibration = Annotated[
    bool,
    typer.Option(
        "--vibration",
        help="a vibration pad's maximum, intensity 0-1 (default: a pressure band's, in kPa)",
    ),
]
Reason = Annotated[
    str, typer.Option("--reason", metavar="TEXT", help="why it changes; logged with who and when")
]
Point = Annotated[str, typer.Argument(metavar="POINT", help="point code or alias, e.g. PC6 or P6")]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable")]


@app.callback(invoke_without_command=True)
def _group(ctx: typer.Context) -> None:
    """Your comfortable maximum per point; without a subcommand, the list."""
    if ctx.invoked_subcommand is None:
        list_maxima(participant=None, as_json=False)


def _who() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return f"uid {os.getuid()}"


def _participant(value: str | None) -> str | None:
    return None if value is None else check_participant(value, "--participant")


def _reason(text: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InputError([Problem("--reason", "", "one line of text, no control characters")])
    return text


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


def describe_change(change: ComfortChange) -> str:
    """A change as the live view says it: "too strong at 12 kPa: lowered to 8.4 kPa"."""

    def said(level: int) -> str:
        return format_level(level, change.actuator)

    if change.kind == "too-strong":
        felt = said(change.felt_level or 0)
        assert change.new_level is not None
        where = f" in session {change.session_id}" if change.session_id is not None else ""
        return f"too strong at {felt}: lowered to {said(change.new_level)}{where}"
    old = "none" if change.old_level is None else said(change.old_level)
    new = "forgotten" if change.new_level is None else said(change.new_level)
    return f"{change.kind} by hand: {old} → {new}"


def _latest(changes: list[ComfortChange]) -> dict[tuple[str, str], ComfortChange]:
    return {(c.point, c.actuator): c for c in changes}  # oldest first: the last one stays


def _row_json(entry: RememberedComfort, last: ComfortChange | None) -> dict[str, object]:
    unit = "kpa" if entry.actuator == "pressure" else "intensity"
    return {
        "point": entry.point,
        "actuator": entry.actuator,
        f"maximum_{unit}": entry.level / 1000,
        "updated_at_utc": dt.datetime.fromtimestamp(entry.updated_at, dt.UTC).isoformat(
            timespec="seconds"
        ),
        "last_change": None if last is None else describe_change(last),
        "reason": None if last is None else last.reason,
    }


@app.command("list")
@reports_errors
def list_maxima(participant: Participant = None, as_json: AsJson = False) -> None:
    """The remembered maxima, per point, with the last change to each."""
    who = _participant(participant)
    catalog = load_points()
    with Journal() as journal:
        maxima = journal.comfort_memory.maxima(participant=who)
        latest = _latest(journal.comfort_memory.log(participant=who))
    if as_json:
        rows = [_row_json(m, latest.get((m.point, m.actuator))) for m in maxima]
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    whose = f" for participant {who}" if who else ""
    if not maxima:
        out.print(f"No comfortable maximum remembered{whose} yet.")
        out.print(
            'A "too strong" during a session remembers one, or: '
            "acudevice comfort set POINT LEVEL --reason TEXT"
        )
        return
    table = Table(title=f"Comfortable maxima{whose}")
    for column in ("point", "name", "maximum", "since", "last change", "why"):
        table.add_column(column, no_wrap=column in ("point", "maximum", "since"))
    for m in maxima:
        name = catalog.resolve(m.point).name if m.point in catalog else ""
        last = latest.get((m.point, m.actuator))
        table.add_row(
            m.point,
            name,
            format_level(m.level, m.actuator),
            _when(m.updated_at),
            "" if last is None else describe_change(last),
            "" if last is None or last.reason is None else last.reason,
        )
    out.print(table)


def _level(value: float, vibration: bool) -> int:
    if vibration:
        INTENSITY.check("LEVEL", value)
        level = round(value * FRACTION_TO_PERMILLE)
        smallest = "0.001"
    else:
        CAP_KPA.check("LEVEL", value)
        level = round(value * KPA_TO_PA)
        smallest = "0.001 kPa"
    if level < 1:
        raise InputError([Problem("LEVEL", "", f"the smallest maximum is {smallest}")])
    return level


@app.command("set")
@reports_errors
def set_maximum(
    point: Point,
    value: Annotated[
        float, typer.Argument(metavar="LEVEL", help="kPa, or intensity 0-1 with --vibration")
    ],
    reason: Reason,
    vibration: Vibration = False,
    participant: Participant = None,
) -> None:
    """Remember LEVEL as the comfortable maximum at POINT, higher or lower than before."""
    who = _participant(participant)
    code = load_points().resolve(point).code
    level = _level(value, vibration)
    actuator = "vibration" if vibration else "pressure"
    with Journal() as journal:
        change = journal.comfort_memory.set(
            code, actuator, level, reason=_reason(reason), who=_who(), participant=who
        )
    whose = f" for participant {who}" if who else ""
    before = "none" if change.old_level is None else format_level(change.old_level, actuator)
    out.print(
        f"{code}{whose}: comfortable maximum {before} → {format_level(level, actuator)}; "
        "the reason is logged"
    )
    if change.old_level is not None and level > change.old_level:
        out.print(
            f"raised: later sessions at {code} run up to {format_level(level, actuator)} "
            "without asking for a confirmation"
        )


@app.command("reset")
@reports_errors
def reset_maximum(
    point: Point,
    reason: Reason,
    vibration: Vibration = False,
    participant: Participant = None,
) -> None:
    """Forget the comfortable maximum at POINT (sessions there ask for no confirmation)."""
    who = _participant(participant)
    code = load_points().resolve(point).code
    actuator = "vibration" if vibration else "pressure"
    with Journal() as journal:
        change = journal.comfort_memory.reset(
            code, actuator, reason=_reason(reason), who=_who(), participant=who
        )
    whose = f" for participant {who}" if who else ""
    if change is None:
        out.print(f"{code}{whose}: no {actuator} maximum is remembered; nothing changed")
        return
    assert change.old_level is not None
    out.print(
        f"{code}{whose}: forgot the comfortable maximum "
        f"{format_level(change.old_level, actuator)}; the reason is logged"
    )


@app.command("log")
@reports_errors
def log(participant: Participant = None, as_json: AsJson = False) -> None:
    """Every change to the maxima, oldest first: "too strong" in sessions and by hand."""
    who = _participant(participant)
    with Journal() as journal:
        changes = journal.comfort_memory.log(participant=who)
    if as_json:
        rows = [c.model_dump(mode="json") | {"said": describe_change(c)} for c in changes]
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    whose = f" for participant {who}" if who else ""
    if not changes:
        out.print(f"No change to a comfortable maximum{whose} yet.")
        return
    table = Table(title=f"Changes to the comfortable maxima{whose}")
    for column in ("when", "point", "change", "why", "who"):
        table.add_column(column, no_wrap=column in ("when", "point"))
    for c in changes:
        table.add_row(_when(c.at), c.point, describe_change(c), c.reason or "", c.who or "")
    out.print(table)

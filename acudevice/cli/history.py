"""`acudevice history` and `acudevice report`: what past sessions did."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from acudevice.cli.common import out, reports_errors, shell_command
from acudevice.errors import InputError, Problem
from acudevice.export import session_row
from acudevice.report import session_picture
from acudevice.store import Journal, SessionRecord
from acudevice.store.models import CapChange

MAX_LIMIT = 1_000_000


@reports_errors
def history(
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="most recent N sessions")] = 20,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="print the sessions as JSON (the columns of `export`)"),
    ] = False,
) -> None:
    """A table of past sessions, newest first."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError([Problem("--limit", "", f"must be 1 to {MAX_LIMIT}, got {limit}")])
    with Journal() as journal:
        sessions = journal.sessions(limit)
        changes = {s.id: journal.cap_changes(s.id) for s in sessions}
        if as_json:
            rows = [
                session_row(s, len(journal.comfort_events(s.id)), changes[s.id]) for s in sessions
            ]
            typer.echo(json.dumps(rows, ensure_ascii=False))
            return
    if not sessions:
        out.print(f"No sessions yet in {journal.path}.")
        out.print(f"Run one with: {shell_command('run', 'nausea-relief')}")
        return
    table = Table(
        title="Sessions",
        caption="symptom: your rating before → after the session, 0 (none) to 10 (worst); "
        "- not rated\n"
        f"journal: {journal.path}",
    )
    columns = ("id", "started", "program", "device", "outcome", "repeats", "peak / cap")
    for col in (*columns, "symptom"):
        table.add_column(col, no_wrap=col in ("program", "outcome", "started", "device"))
    for s in sessions:
        started = dt.datetime.fromtimestamp(s.started_at).strftime("%m-%d %H:%M")
        before = "-" if s.rating_before is None else str(s.rating_before)
        after = "-" if s.rating_after is None else str(s.rating_after)
        outcome = s.outcome + (f" ({len(s.confirmations)} confirmed)" if s.confirmations else "")
        table.add_row(
            str(s.id),
            started,
            s.program,
            ", ".join(s.devices),
            outcome,
            f"{s.repeats_done}/{s.repeats_planned}",
            peak_and_cap(s, changes[s.id]),
            "-" if s.rating_before is None and s.rating_after is None else f"{before} → {after}",
        )
    out.print(table)


def peak_and_cap(record: SessionRecord, changes: list[CapChange]) -> str:
    """The peak measured and the cap the session ended with, saying what lowered it:
    "12.1 / 8.33 kPa (too strong)", "intensity 0.21 / 0.8"."""
    peak = "-" if record.peak_level is None else f"{record.peak_level / 1000:g}"
    cap = changes[-1].level if changes else record.cap_level
    pair = (
        f"{peak} / {cap / 1000:g} kPa"
        if record.actuator == "pressure"
        else f"intensity {peak} / {cap / 1000:g}"
    )
    if not changes:
        return pair
    last = changes[-1]
    return pair + (
        " (too strong)" if last.cause == "too-strong" else f" (intensity {last.percent} %)"
    )


@reports_errors
def report(
    session: Annotated[str, typer.Argument(metavar="SESSION", help="session id, or 'last'")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG or SVG file to write")],
) -> None:
    """Planned vs measured, the cap stepping down where it was lowered, "too strong", faults
    and where a session stopped short."""
    if output.suffix.lower() not in (".png", ".svg"):
        raise InputError([Problem(str(output), "", "the report file must end in .png or .svg")])
    with Journal() as journal:
        if session == "last":
            newest = journal.sessions(1)
            if not newest:
                raise InputError([Problem("SESSION", "", "the journal has no sessions yet")])
            session_id = newest[0].id
        elif session.isdigit():
            session_id = int(session)
        else:
            raise InputError([Problem("SESSION", "", f"{session!r} is not a session id or 'last'")])
        record = journal.session(session_id)
        picture = session_picture(
            record,
            [s for s in journal.samples(session_id) if s.channel == 0],
            journal.faults(session_id),
            journal.cap_changes(session_id),
        )
    picture.draw(output)
    out.print(f"wrote {output}")

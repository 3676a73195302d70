"""Sessions out of the journal for a spreadsheet or a notebook: CSV or JSON, units in names.

Five tables, one file each: `sessions`, `samples`, `comfort_events`, `faults`,
`intensity_changes`. A session's cap at the end (`final_cap_*`) is the screened cap lowered
by each "too strong" (`comfort_events`: `old_*` the level felt when pressed, `new_*` the
lowered cap) and each lower intensity, as the live view said it. Pressure is
in kPa and vibration intensity a fraction 0–1, each in its own column (`peak_kpa`,
`peak_intensity`), so a column never mixes units; the other is left empty. Files are
written to temporary names and renamed, so an export is either whole or absent. They hold
health data, so each file is 0600 from its creation, and a directory the export creates is
0700.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from acudevice.errors import InputError, Problem
from acudevice.files import write_private_text
from acudevice.plan.devices import FRACTION_TO_PERMILLE, KPA_TO_PA
from acudevice.protocol import FirmwareState
from acudevice.store import Journal, SessionRecord
from acudevice.store.models import CapChange

Format = Literal["csv", "json"]
Value = str | int | float | None
Row = dict[str, Value]

SESSION_COLUMNS = (
    "session_id",
    "started_at_utc",
    "ended_at_utc",
    "program",
    "devices",
    "device_model",
    "actuator",
    "outcome",
    "detail",
    "repeats_done",
    "repeats_planned",
    "peak_kpa",
    "cap_kpa",
    "peak_intensity",
    "cap_intensity",
    "final_cap_kpa",
    "final_cap_intensity",
    "cap_lowered_by",
    "symptom_before_0_10",
    "symptom_after_0_10",
    "comfort_events",
    "start_skew_ms",
)
SAMPLE_COLUMNS = (
    "session_id",
    "channel",
    "t_s",
    "measured_kpa",
    "target_kpa",
    "measured_intensity",
    "target_intensity",
    "state",
)
COMFORT_COLUMNS = (
    "session_id",
    "point",
    "t_s",
    "old_kpa",
    "new_kpa",
    "old_intensity",
    "new_intensity",
)
FAULT_COLUMNS = ("session_id", "channel", "t_s", "code", "message")
INTENSITY_COLUMNS = ("session_id", "t_s", "percent", "cap_kpa", "cap_intensity")
TABLES: dict[str, tuple[str, ...]] = {
    "sessions": SESSION_COLUMNS,
    "samples": SAMPLE_COLUMNS,
    "comfort_events": COMFORT_COLUMNS,
    "faults": FAULT_COLUMNS,
    "intensity_changes": INTENSITY_COLUMNS,
}


def parse_since(text: str) -> float:
    """`YYYY-MM-DD` or an ISO date-time (local time unless it names a zone) → epoch seconds."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            [Problem("--since", "", f"{text!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM)")]
        ) from None
    return when.timestamp()


def _utc(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


def _levels(actuator: str, **levels: int | None) -> Row:
    """{name}_kpa or {name}_intensity for each level; the other unit's column empty."""
    unit, other = ("kpa", "intensity") if actuator == "pressure" else ("intensity", "kpa")
    row: Row = {}
    for name, level in levels.items():
        scale = KPA_TO_PA if actuator == "pressure" else FRACTION_TO_PERMILLE
        row[f"{name}_{unit}"] = None if level is None else level / scale
        row[f"{name}_{other}"] = None
    return row


def _seconds(t_ms: int | None) -> float | None:
    return None if t_ms is None else t_ms / 1000


def final_cap(record: SessionRecord, changes: Sequence[CapChange]) -> tuple[int, str | None]:
    """The cap the session ended with, and what lowered it last ("too-strong",
    "intensity"; None when it ran at the screened cap)."""
    if not changes:
        return record.cap_level, None
    return changes[-1].level, changes[-1].cause


def session_row(
    record: SessionRecord, comfort_events: int, changes: Sequence[CapChange] = ()
) -> Row:
    row: Row = {
        "session_id": record.id,
        "started_at_utc": _utc(record.started_at),
        "ended_at_utc": _utc(record.ended_at),
        "program": record.program,
        "devices": " ".join(record.devices),
        "device_model": record.device_model,
        "actuator": record.actuator,
        "outcome": record.outcome,
        "detail": record.detail,
        "repeats_done": record.repeats_done,
        "repeats_planned": record.repeats_planned,
        "symptom_before_0_10": record.rating_before,
        "symptom_after_0_10": record.rating_after,
        "comfort_events": comfort_events,
        "start_skew_ms": record.start_skew_ms,
    }
    final, lowered_by = final_cap(record, changes)
    row.update(_levels(record.actuator, peak=record.peak_level, cap=record.cap_level))
    row.update(_levels(record.actuator, final_cap=final))
    row["cap_lowered_by"] = lowered_by
    return {column: row[column] for column in SESSION_COLUMNS}


def _state_name(code: int) -> str:
    try:
        return FirmwareState(code).name
    except ValueError:
        return str(code)


def collect(journal: Journal, since: float | None = None) -> dict[str, list[Row]]:
    """Every table as rows of plain values, sessions oldest first."""
    tables: dict[str, list[Row]] = {name: [] for name in TABLES}
    for record in journal.sessions_since(since):
        comfort = journal.comfort_events(record.id)
        changes = journal.cap_changes(record.id)
        tables["sessions"].append(session_row(record, len(comfort), changes))
        for s in journal.samples(record.id):
            row: Row = {"session_id": record.id, "channel": s.channel, "t_s": s.t_ms / 1000}
            row.update(_levels(record.actuator, measured=s.measured_level, target=s.target_level))
            row["state"] = _state_name(s.state)
            tables["samples"].append({c: row[c] for c in SAMPLE_COLUMNS})
        for c in comfort:
            row = {"session_id": record.id, "point": c.point, "t_s": _seconds(c.t_ms)}
            row.update(_levels(record.actuator, old=c.old_level, new=c.new_level))
            tables["comfort_events"].append({k: row[k] for k in COMFORT_COLUMNS})
        for i in journal.intensity_changes(record.id):
            row = {"session_id": record.id, "t_s": _seconds(i.t_ms), "percent": i.percent}
            row.update(_levels(record.actuator, cap=i.level))
            tables["intensity_changes"].append({k: row[k] for k in INTENSITY_COLUMNS})
        for f in journal.faults(record.id):
            tables["faults"].append(
                {
                    "session_id": record.id,
                    "channel": f.channel,
                    "t_s": _seconds(f.t_ms),
                    "code": f.code,
                    "message": f.message,
                }
            )
    return tables


def to_csv(columns: Sequence[str], rows: Sequence[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def to_json(rows: Sequence[Row]) -> str:
    return json.dumps(list(rows), indent=1, ensure_ascii=False) + "\n"


def write_export(tables: dict[str, list[Row]], directory: Path, fmt: Format) -> list[Path]:
    """One file per table in `directory` (created if missing); the paths written."""
    if directory.exists() and not directory.is_dir():
        raise InputError([Problem(str(directory), "", "exists and is not a directory")])
    render: Callable[[str, list[Row]], str] = (
        (lambda name, rows: to_csv(TABLES[name], rows))
        if fmt == "csv"
        else (lambda name, rows: to_json(rows))
    )
    staged: list[tuple[Path, Path]] = []
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, rows in tables.items():
            final = directory / f"{name}.{fmt}"
            temp = directory / f".{name}.{fmt}.partial"
            write_private_text(temp, render(name, rows))
            staged.append((temp, final))
    except OSError as exc:
        for temp in directory.glob(".*.partial"):
            temp.unlink(missing_ok=True)
        raise InputError([Problem(str(directory), "", f"cannot write: {exc.strerror}")]) from None
    for temp, final in staged:
        os.replace(temp, final)
    return [final for _, final in staged]

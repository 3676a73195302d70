"""A study out of the central store as CSV: one file per table, units in the column names.

`sessions.csv`, `samples.csv`, `comfort_events.csv`, `faults.csv` and `intensity_changes.csv`,
keyed by `session_uuid`; in a trial, `schedule.csv`, every enrolled participant's windows (study, stratum,
time zone, first and last day); and `allocation.csv` (participant, arm, real program, label)
only when the caller passes allocations from a logged unblinding (docs/trials.md).
Pressure is in kPa and vibration a fraction 0-1, each in its own column (`measured_kpa`,
`measured_intensity`), the other left empty, as in the single-host `acudevice export`. Samples stream from PostgreSQL by COPY (a study has millions of rows);
every file is written under a temporary name and renamed, so an export is whole or absent.
The BIDS-style tree is study/bids.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acudevice.errors import InputError, Problem
from acudevice.plan.devices import FRACTION_TO_PERMILLE, KPA_TO_PA
from acudevice.protocol import FirmwareState
from acudevice.store.identity import check_participant


def _state_sql(column: str) -> str:
    cases = " ".join(f"WHEN {s.value} THEN '{s.name}'" for s in FirmwareState)
    return f"CASE {column} {cases} ELSE {column}::text END"


def _level_sql(column: str, name: str) -> str:
    """`<name>_kpa, <name>_intensity` from a level column of a row joined to its session."""
    return (
        f"CASE WHEN se.actuator = 'pressure' THEN {column} / {KPA_TO_PA}.0 END AS {name}_kpa, "
        f"CASE WHEN se.actuator = 'vibration' THEN {column} / {FRACTION_TO_PERMILLE}.0 END"
        f" AS {name}_intensity"
    )


def _utc_sql(column: str) -> str:
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


class Selection:
    """Which sessions: all, or one participant's, or those started since a time."""

    def __init__(self, participant: str | None = None, since: float | None = None) -> None:
        if participant is not None:
            check_participant(participant, "--participant")
        self.participant = participant
        self.since = None if since is None else dt.datetime.fromtimestamp(since, dt.UTC)

    def where(self, alias: str = "se") -> tuple[str, list[Any]]:
        clauses, args = ["TRUE"], list[Any]()
        if self.participant is not None:
            args.append(self.participant)
            clauses.append(f"{alias}.participant = ${len(args)}")
        if self.since is not None:
            args.append(self.since)
            clauses.append(f"{alias}.started_at >= ${len(args)}")
        return " AND ".join(clauses), args


def queries(selection: Selection) -> dict[str, tuple[str, list[Any]]]:
    where, args = selection.where()
    sessions = f"""
        SELECT se.session_uuid, se.participant, se.gateway, se.band, se.program,
            se.device_model, se.actuator, se.outcome, se.detail,
            {_utc_sql("se.started_at")} AS started_at_utc,
            {_utc_sql("se.ended_at")} AS ended_at_utc,
            round(extract(epoch FROM se.ended_at - se.started_at)::numeric, 1) AS duration_s,
            se.repeats_done, se.repeats_planned,
            {_level_sql("se.peak_level", "peak")}, {_level_sql("se.cap_level", "cap")},
            se.rating_before AS symptom_before_0_10, se.rating_after AS symptom_after_0_10,
            (SELECT count(*) FROM comfort_events c WHERE c.session_uuid = se.session_uuid)
                AS comfort_events,
            (SELECT count(*) FROM faults f WHERE f.session_uuid = se.session_uuid) AS faults
        FROM sessions se WHERE {where} ORDER BY se.started_at, se.session_uuid"""
    samples = f"""
        SELECT s.session_uuid, s.channel, s.t_ms / 1000.0 AS t_s,
            {_level_sql("s.measured_level", "measured")}, {_level_sql("s.target_level", "target")},
            {_state_sql("s.state")} AS state
        FROM samples s JOIN sessions se USING (session_uuid) WHERE {where}
        ORDER BY se.started_at, s.session_uuid, s.channel, s.t_ms"""
    comfort = f"""
        SELECT c.session_uuid, c.n, c.point, c.t_ms / 1000.0 AS t_s,
            {_level_sql("c.old_level", "old")}, {_level_sql("c.new_level", "new")},
            {_utc_sql("c.at")} AS at_utc
        FROM comfort_events c JOIN sessions se USING (session_uuid) WHERE {where}
        ORDER BY se.started_at, c.session_uuid, c.n"""
    faults = f"""
        SELECT f.session_uuid, f.n, f.channel, f.t_ms / 1000.0 AS t_s, f.code, f.message,
            {_utc_sql("f.at")} AS at_utc
        FROM faults f JOIN sessions se USING (session_uuid) WHERE {where}
        ORDER BY se.started_at, f.session_uuid, f.n"""
    intensity = f"""
        SELECT i.session_uuid, i.n, i.t_ms / 1000.0 AS t_s, i.percent,
            {_level_sql("i.level", "cap")}, {_utc_sql("i.at")} AS at_utc
        FROM intensity_changes i JOIN sessions se USING (session_uuid) WHERE {where}
        ORDER BY se.started_at, i.session_uuid, i.n"""
    return {
        "sessions": (sessions, args),
        "samples": (samples, args),
        "comfort_events": (comfort, args),
        "faults": (faults, args),
        "intensity_changes": (intensity, args),
    }


def prepare_directory(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise InputError([Problem(str(directory), "", "exists and is not a directory")])
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError([Problem(str(directory), "", f"cannot write: {exc.strerror}")]) from None


def commit_files(staged: Sequence[tuple[Path, Path]]) -> list[Path]:
    for temp, final in staged:
        os.replace(temp, final)
    return [final for _, final in staged]


SCHEDULE_COLUMNS = (
    "participant", "study", "stratum", "timezone", "first_day", "last_day", "days",
    "window", "start_local", "end_local", "enrolled_at_utc",
)  # fmt: skip
ALLOCATION_COLUMNS = (
    "participant", "study", "stratum", "arm", "program", "label", "allocated_at_utc",
)  # fmt: skip


async def schedule_rows(conn: Any, selection: Selection) -> list[tuple[Any, ...]]:
    """One row per enrolled participant and daily window."""
    rows = await conn.fetch(
        "SELECT participant, study, stratum, timetable, enrolled_at FROM enrolments"
        " WHERE $1::text IS NULL OR participant = $1 ORDER BY participant",
        selection.participant,
    )
    out = []
    for r in rows:
        t = json.loads(r["timetable"])
        last = dt.date.fromisoformat(t["first_day"]) + dt.timedelta(days=t["days"] - 1)
        for n, w in enumerate(t["windows"], start=1):
            out.append((r["participant"], r["study"], r["stratum"], t["timezone"],
                        t["first_day"], last.isoformat(), t["days"], n, w["start"], w["end"],
                        _utc(r["enrolled_at"])))  # fmt: skip
    return out


def _utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(rows)


async def export_csv(
    conn: Any, directory: Path, selection: Selection, allocations: Sequence[Any] | None = None
) -> list[Path]:
    """Write the CSV files into `directory`; the paths written. `allocations` (from a logged
    unblinding, study/allocations.py) adds `allocation.csv`."""
    prepare_directory(directory)
    staged: list[tuple[Path, Path]] = []
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            for name, (sql, args) in queries(selection).items():
                temp = directory / f".{name}.csv.partial"
                await conn.copy_from_query(sql, *args, output=str(temp), format="csv", header=True)
                staged.append((temp, directory / f"{name}.csv"))
            if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM enrolments)"):
                temp = directory / ".schedule.csv.partial"
                _write_csv(temp, SCHEDULE_COLUMNS, await schedule_rows(conn, selection))
                staged.append((temp, directory / "schedule.csv"))
        if allocations is not None:
            temp = directory / ".allocation.csv.partial"
            chosen = [a for a in allocations
                      if selection.participant in (None, a.participant)]  # fmt: skip
            _write_csv(temp, ALLOCATION_COLUMNS, [
                (a.participant, a.study, a.stratum, a.arm, a.program, a.label,
                 _utc(a.allocated_at)) for a in chosen
            ])  # fmt: skip
            staged.append((temp, directory / "allocation.csv"))
    except OSError as exc:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise InputError([Problem(str(directory), "", f"cannot write: {exc.strerror}")]) from None
    return commit_files(staged)

"""A coordinator's view of the central store: exports that read back, and a report that adds up."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from acudevice.store import Journal
from acudevice.store.records import ComfortEntry, SamplesEntry, SessionEntry
from acudevice.study.importer import import_journal
from acudevice.study.report import build
from acudevice.study.schema import connect
from acudevice.study.writer import prepare, write
from tests.study_helpers import centre, real_session, replay

ROOT = Path(__file__).resolve().parents[1]


def acudevice(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acudevice.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
async def study(tmp_path: Path, pg_url: str) -> tuple[str, Journal]:
    """Two participants' real sessions (one each) from gateway gw1, in the central store."""
    await centre(pg_url, ["gw1"])
    source = Journal(tmp_path / "band.db")
    gateway = Journal(tmp_path / "gw1.db")
    first = await real_session(source, seed=1)
    replay(source, first, gateway, gateway="gw1", participant="P-01", band="left")
    replay(source, first, gateway, gateway="gw1", participant="P_02", band="right")
    gateway.close()
    source.close()
    conn = await connect(pg_url)
    try:
        await import_journal(conn, tmp_path / "gw1.db", "gw1")
    finally:
        await conn.close()
    return pg_url, Journal(tmp_path / "gw1.db")


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


async def test_csv_export_reads_back_as_the_journal_with_units_in_column_names(
    study: tuple[str, Journal], tmp_path: Path
) -> None:
    url, journal = study
    done = acudevice("study", "export", "--database", url, "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "comfort_events.csv",
        "faults.csv",
        "intensity_changes.csv",
        "samples.csv",
        "sessions.csv",
    ]
    sessions = read_csv(out / "sessions.csv")
    by_uuid = {s.session_uuid: s for s in journal.sessions(10)}
    assert {(s["participant"], s["band"]) for s in sessions} == {
        ("P-01", "left"),
        ("P_02", "right"),
    }
    for row in sessions:
        mine = by_uuid[row["session_uuid"]]
        assert (row["gateway"], row["program"], row["outcome"]) == (
            "gw1",
            "nausea-relief",
            "completed",
        )
        assert float(row["peak_kpa"]) == pytest.approx(mine.peak_level / 1000)  # type: ignore[operator]
        assert row["peak_intensity"] == ""
    samples = read_csv(out / "samples.csv")
    assert list(samples[0]) == [
        "session_uuid", "channel", "t_s", "measured_kpa", "measured_intensity",
        "target_kpa", "target_intensity", "state",
    ]  # fmt: skip
    for record in journal.sessions(10):
        mine = journal.samples(record.id)
        theirs = [s for s in samples if s["session_uuid"] == record.session_uuid]
        assert len(theirs) == len(mine) > 100
        assert [
            (int(s["channel"]), round(float(s["t_s"]) * 1000), float(s["measured_kpa"]))
            for s in theirs
        ] == [(m.channel, m.t_ms, m.measured_level / 1000) for m in mine]
    assert {s["state"] for s in samples} >= {"RUNNING"}
    one = acudevice(
        "study", "export", "--database", url, "-o", str(tmp_path / "p1"), "--participant", "P-01"
    )
    assert one.returncode == 0, one.stderr
    assert [s["participant"] for s in read_csv(tmp_path / "p1" / "sessions.csv")] == ["P-01"]
    later = acudevice(
        "study", "export", "--database", url, "-o", str(tmp_path / "later"), "--since", "2999-01-01"
    )
    assert later.returncode == 0 and read_csv(tmp_path / "later" / "sessions.csv") == []


async def test_bids_export_reads_back_and_passes_the_bids_validator(
    study: tuple[str, Journal], tmp_path: Path
) -> None:
    url, journal = study
    tree = tmp_path / "bids"
    done = acudevice("study", "export", "--database", url, "-o", str(tree), "--format", "bids")
    assert done.returncode == 0, done.stderr
    participants = (tree / "participants.tsv").read_text().splitlines()
    assert participants == [
        "participant_id\tpseudonym\tsessions",
        "sub-P01\tP-01\t1",
        "sub-P02\tP_02\t1",
    ]
    record = next(r for r in journal.sessions(10) if r.participant == "P-01")
    ses = record.session_uuid.replace("-", "")
    stem = tree / "sub-P01" / f"ses-{ses}" / "beh" / f"sub-P01_ses-{ses}_task-nausearelief_physio"
    side = json.loads(stem.with_suffix(".json").read_text())
    assert side["SamplingFrequency"] == 4.0
    assert side["Columns"] == ["measured_kpa_ch0", "target_kpa_ch0", "state_ch0"]
    assert side["measured_kpa_ch0"]["Units"] == "kPa"
    rows = gzip.decompress(stem.with_suffix(".tsv.gz").read_bytes()).decode().splitlines()
    assert not rows[0][0].isalpha()  # no header row
    mine = journal.samples(record.id)
    # each sample sits in the 250 ms slot it falls in, from the slot of the first one
    start_ms = mine[0].t_ms - mine[0].t_ms % 250
    assert side["StartTime"] == start_ms / 1000
    assert len(rows) == (mine[-1].t_ms - start_ms) // 250 + 1
    for m in mine:
        row = rows[(m.t_ms - start_ms) // 250].split("\t")
        assert (float(row[0]), int(row[2])) == (m.measured_level / 1000, m.state)
    result = bids_validator(tree)
    errors = [e["key"] for e in result["issues"]["errors"]]
    assert errors == [], json.dumps(result["issues"]["errors"], indent=1)[:3000]
    warnings = sorted(w["key"] for w in result["issues"]["warnings"])
    assert set(warnings) <= KNOWN_BIDS_WARNINGS, warnings


KNOWN_BIDS_WARNINGS = {"NO_AUTHORS", "MISSING_SESSION"}
"""Findings of bids-validator we cannot avoid, each explained in docs/study.md."""


def bids_validator(tree: Path) -> dict[str, Any]:
    """The field's own validator (npm bids-validator 1.x) on `tree`, as JSON."""
    validator = shutil.which("bids-validator") or str(
        ROOT / ".tools/node_modules/.bin/bids-validator"
    )
    if not os.path.exists(validator):
        message = "bids-validator not installed (make test installs it from npm into .tools/)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    checked = subprocess.run(
        [validator, "--json", str(tree)], capture_output=True, text=True, timeout=120, check=False
    )
    result: dict[str, Any] = json.loads(checked.stdout)
    return result


async def test_the_report_adds_up_a_known_data_set(tmp_path: Path, pg_url: str) -> None:
    await centre(pg_url, ["gw1", "gw2", "gw3"])
    day = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    now = day + dt.timedelta(days=4)
    plan = [  # participant, day offset, outcome, running samples, too-strong presses
        ("P1", 0, "completed", 480, 1),
        ("P1", 0, "faulted", 120, 0),
        ("P1", 1, "completed", 480, 2),
        ("P2", 0, "stopped", 240, 0),
        ("P2", 3, "completed", 480, 0),
    ]
    records: list[object] = []
    for i, (who, offset, outcome, running, pressed) in enumerate(plan):
        uid = f"00000000-0000-4000-8000-{i:012d}"
        records.append(
            SessionEntry(
                session_uuid=uid,
                rev=1,
                gateway="gw1",
                band="b",
                participant=who,
                program="nausea-relief",
                device_model="wristband-p1",
                actuator="pressure",
                cap_level=20_000,
                started_at=(day + dt.timedelta(days=offset)).timestamp(),
                ended_at=None,
                outcome=outcome,
                repeats_done=1,
                repeats_planned=4,
            )
        )
        rows = [(0, 250 * k, 9000, 9000, 2) for k in range(running)]
        rows += [(0, 250 * (running + k), 0, 0, 4) for k in range(40)]  # venting: not counted
        rows += [(1, 250 * k, 9000, 9000, 2) for k in range(running)]  # channel 1: not counted
        for start in range(0, len(rows), 500):
            records.append(
                SamplesEntry(session_uuid=uid, participant=who, rows=rows[start : start + 500])
            )
        for n in range(1, pressed + 1):
            records.append(
                ComfortEntry(
                    session_uuid=uid,
                    participant=who,
                    n=n,
                    point="PC6",
                    new_level=8000,
                    at=day.timestamp(),
                )
            )
    conn = await connect(pg_url)
    try:
        await prepare(conn)
        async with conn.transaction():
            await write(conn, records)  # type: ignore[arg-type]
            await conn.execute("UPDATE gateways SET last_seen = $1 WHERE name = 'gw1'", now)
            await conn.execute(
                "UPDATE gateways SET last_seen = $1 WHERE name = 'gw2'", now - dt.timedelta(days=2)
            )
        report = await build(conn, now=now, quiet_days=2, quiet_hours=24)
    finally:
        await conn.close()
    cells = {(c.participant, c.day): c for c in report.cells}
    first = cells[("P1", "2026-03-02")]
    assert (first.started, first.completed, first.faulted, first.stopped) == (2, 1, 1, 0)
    assert first.minutes == pytest.approx((480 + 120) * 0.25 / 60)
    assert first.too_strong == 1
    assert cells[("P1", "2026-03-03")].too_strong == 2
    assert cells[("P2", "2026-03-02")].stopped == 1
    assert cells[("P2", "2026-03-05")].minutes == 2.0
    assert report.days == ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
    assert [q["participant"] for q in report.quiet_participants] == ["P1"]
    assert [g["gateway"] for g in report.quiet_gateways] == ["gw2", "gw3"]
    assert report.quiet_gateways[1]["last_seen_utc"] is None
    png = Path(os.environ.get("ACUDEVICE_REPORT_PNG", tmp_path / "report.png"))
    done = acudevice("study", "report", "--database", pg_url, "-o", str(png), "--json")
    assert done.returncode == 0, done.stderr
    assert is_png(png)
    printed = json.loads(done.stdout)
    assert {(c["participant"], c["day"], c["started"]) for c in printed["cells"]} == {
        (c.participant, c.day, c.started) for c in report.cells
    }

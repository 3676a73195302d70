"""The study report counts a known week's adherence from the central store, and marks misses."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from acudevice.paths import shipped_profiles_dir
from acudevice.plan.adherence import adherence
from acudevice.plan.protocol import parse_protocol
from acudevice.store.records import SessionEntry
from acudevice.study.allocations import enrol
from acudevice.study.heatmap import draw
from acudevice.study.report import build
from acudevice.study.schema import connect
from acudevice.study.writer import prepare, write
from tests.study_helpers import centre
from tests.test_study_export import is_png
from tests.test_trial_adherence import KNOWN_WEEK, WEEK, at

STUDY = parse_protocol(shipped_profiles_dir() / "studies" / "nausea-trial.toml")


def entry(n: int, who: str, started: dt.datetime, outcome: str) -> SessionEntry:
    return SessionEntry(
        session_uuid=f"00000000-0000-4000-8000-{n:012d}", rev=1, gateway="gw1", band="b",
        participant=who, program="study-programme", device_model="wristband-p1",
        actuator="pressure", cap_level=20_000, started_at=started.timestamp(), outcome=outcome,
        repeats_done=4, repeats_planned=4,
    )  # fmt: skip


async def test_the_report_counts_a_known_week_and_frames_missed_windows(
    tmp_path: Path, pg_url: str
) -> None:
    await centre(pg_url, ["gw1"])
    now = at(28, "20:00").astimezone(dt.UTC)
    conn = await connect(pg_url)
    try:
        enrolled = await enrol(conn, STUDY, "P1", {"site": "leeds"}, first_day=WEEK.first_day)
        assert enrolled.timetable == WEEK
        await enrol(conn, STUDY, "P2", {"site": "london"}, first_day=WEEK.first_day,
                    timezone="Asia/Tokyo")  # fmt: skip
        records = [entry(i, "P1", s.started_at, s.outcome) for i, s in enumerate(KNOWN_WEEK)]
        # 20:00 UTC on Monday is 05:00 on Tuesday in Tokyo: P2's day is their local one
        records.append(entry(99, "P2", dt.datetime(2027, 3, 22, 20, 0, tzinfo=dt.UTC), "completed"))
        await prepare(conn)
        async with conn.transaction():
            await write(conn, records)  # type: ignore[arg-type]
        report = await build(conn, now=now)
    finally:
        await conn.close()
    mine = [a for a in report.adherence if a["participant"] == "P1"]
    expected = [d.as_dict() for d in adherence(WEEK, KNOWN_WEEK, now)]
    assert [
        {k: v for k, v in a.items() if k not in ("participant", "study")} for a in mine
    ] == expected
    assert [(a["done"], a["late"], a["missed"]) for a in mine][:3] == [
        (3, 0, 0),
        (2, 0, 1),
        (0, 2, 1),
    ]
    [p1] = [t for t in report.adherence_totals if t["participant"] == "P1"]
    assert (p1["windows"], p1["done"], p1["late"], p1["failed"], p1["missed"], p1["due"]) == (
        21, 7, 3, 3, 7, 1,
    )  # fmt: skip
    cells = {(c.participant, c.day): c for c in report.cells}
    assert ("P2", "2027-03-23") in cells and ("P2", "2027-03-22") not in cells
    p2 = [a for a in report.adherence if a["participant"] == "P2"]
    assert p2[1]["date"] == "2027-03-23" and p2[1]["extra"] == 1, "05:00 is before its windows"
    assert report.arms == {} and not report.unblinded
    assert report.days[0] == "2027-03-22"
    assert report.days[-1] == "2027-03-29", "the week, and the day of the session after it"
    png = Path(os.environ.get("ACUDEVICE_TRIAL_PNG", tmp_path / "adherence.png"))
    draw(report, png)
    assert is_png(png)

"""The journal survives what people and machines do to it."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from acudevice.store import Journal, Sample
from acudevice.store.journal import MAX_SAMPLES_PER_SESSION
from tests.journal_helpers import begin_row


def begin(journal: Journal, program: str = "nausea-relief") -> int:
    return begin_row(
        journal,
        program=program,
        confirmations=[{"rule": "hold-soft", "reason": "study"}],
        schedule={"program": program},
        rating_before=6,
    )


def test_a_session_round_trips_with_its_confirmations_and_ratings(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        sid = begin(journal)
        journal.add_samples(
            sid,
            [
                Sample(channel=0, t_ms=t, measured_level=t, target_level=t, state=2)
                for t in range(0, 1000, 250)
            ],
        )
        journal.add_fault(sid, channel=0, t_ms=500, code="over-pressure", message="too high")
        journal.end_session(
            sid, outcome="faulted", detail="over-pressure", peak_level=21_500, repeats_done=1
        )
        journal.rate_after(sid, 3)
    with Journal(tmp_path / "j.db") as journal:
        record = journal.session(sid)
        assert (record.outcome, record.peak_level, record.rating_before, record.rating_after) == (
            "faulted",
            21_500,
            6,
            3,
        )
        assert record.confirmations == [{"rule": "hold-soft", "reason": "study"}]
        assert [s.t_ms for s in journal.samples(sid)] == [0, 250, 500, 750]
        assert [f.code for f in journal.faults(sid)] == ["over-pressure"]


def test_samples_are_bounded_per_session(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        sid = begin(journal)
        batch = [
            Sample(channel=0, t_ms=t, measured_level=0, target_level=0, state=2)
            for t in range(MAX_SAMPLES_PER_SESSION + 500)
        ]
        journal.add_samples(sid, batch)
        journal.add_samples(sid, batch[:10])
        assert len(journal.samples(sid)) == MAX_SAMPLES_PER_SESSION


def test_comfort_maximum_only_ever_goes_down(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        sid = begin(journal)
        journal.add_comfort_event(
            sid, point="PC6", actuator="pressure", t_ms=1, old_level=12_000, new_level=8_400
        )
        journal.add_comfort_event(
            sid, point="PC6", actuator="pressure", t_ms=2, old_level=None, new_level=9_000
        )
        assert journal.comfort_max("pressure") == {"PC6": 8_400}
        assert journal.comfort_max("vibration") == {}


def test_sigkill_mid_session_leaves_an_interrupted_row_and_earlier_sessions_intact(
    tmp_path: Path,
) -> None:
    db = tmp_path / "j.db"
    with Journal(db) as journal:
        earlier = begin(journal, "sleep")
        journal.end_session(earlier, outcome="completed", repeats_done=3)
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from acudevice.store import Journal, Sample
        j = Journal(Path({str(db)!r}))
        sid = j.begin_session(program="nausea-relief", devices=["sim://"], device_model="m",
                              actuator="pressure", cap_level=1, limits={{}}, confirmations=[],
                              schedule={{}}, repeats_planned=4)
        j.add_samples(sid, [Sample(channel=0, t_ms=i, measured_level=i, target_level=i, state=2)
                            for i in range(1000)])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    with Journal(db) as journal:
        assert journal.integrity_ok()
        newest, oldest = journal.sessions()
        assert newest.outcome == "interrupted" and newest.ended_at is None
        assert oldest.id == earlier and oldest.outcome == "completed"
        assert len(journal.samples(newest.id)) == 1000


def test_a_live_session_of_another_process_is_not_marked_interrupted(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        sid = begin(journal)
    with Journal(tmp_path / "j.db") as journal:
        assert journal.session(sid).outcome == "running"

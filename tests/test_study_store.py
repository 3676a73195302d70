"""The journal knows who wore the band, and queues what the centre must receive."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from pathlib import Path

import pytest

from acudevice.errors import InputError
from acudevice.store import Journal, JournalError, OutboxBound, Sample, check_participant
from acudevice.store.records import RECORD, SamplesEntry, SessionEntry
from tests.journal_helpers import begin_row

pytestmark = pytest.mark.unit


def queued(journal: Journal) -> list[object]:
    return [RECORD.validate_json(p.body) for p in journal.outbox.pending(0, 10_000)]


def samples(n: int, channel: int = 0, start: int = 0) -> list[Sample]:
    return [
        Sample(channel=channel, t_ms=start + 250 * i, measured_level=i, target_level=i, state=2)
        for i in range(n)
    ]


@pytest.mark.parametrize("bad", ["", "a" * 33, "P 1", "P/1", "P+1", "Ä1", "P1\n", "#"])
def test_a_participant_id_that_is_not_a_pseudonym_is_refused_in_one_line(bad: str) -> None:
    with pytest.raises(InputError) as caught:
        check_participant(bad, "--participant")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("--participant")


@pytest.mark.parametrize("good", ["P1", "site2-a_07", "x" * 32])
def test_pseudonyms_pass(good: str) -> None:
    assert check_participant(good) == good


def test_a_gateway_session_records_who_where_and_a_global_uuid(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        a = begin_row(journal, participant="P1", gateway="gw1", band="left")
        b = begin_row(journal)
        first, second = journal.session(a), journal.session(b)
    assert (first.participant, first.gateway, first.band) == ("P1", "gw1", "left")
    assert (second.participant, second.gateway, second.band) == (None, None, None)
    assert uuid.UUID(first.session_uuid).version == 4
    assert first.session_uuid != second.session_uuid


def test_comfort_maxima_belong_to_the_participant_of_the_session(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        p1 = begin_row(journal, participant="P1", gateway="gw1", band="a")
        p2 = begin_row(journal, participant="P2", gateway="gw1", band="b")
        alone = begin_row(journal)
        for sid, level in ((p1, 9000), (p2, 15000), (alone, 12000)):
            journal.add_comfort_event(
                sid, point="PC6", actuator="pressure", t_ms=1000, old_level=20000, new_level=level
            )
        assert journal.comfort_max("pressure", participant="P1") == {"PC6": 9000}
        assert journal.comfort_max("pressure", participant="P2") == {"PC6": 15000}
        assert journal.comfort_max("pressure") == {"PC6": 12000}
        assert journal.comfort_max("vibration", participant="P1") == {}


def test_every_write_of_a_gateway_session_is_queued_and_a_single_hosts_is_not(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path / "j.db") as journal:
        sid = begin_row(journal, participant="P1", gateway="gw1", band="left", rating_before=6)
        journal.add_samples(sid, samples(1200))
        journal.add_fault(sid, channel=0, t_ms=500, code="over-pressure", message="too high")
        journal.add_comfort_event(
            sid, point="PC6", actuator="pressure", t_ms=700, old_level=20000, new_level=15000
        )
        journal.add_intensity_change(sid, t_ms=900, percent=60, level=12000)
        journal.end_session(sid, outcome="completed", peak_level=20000, repeats_done=4)
        journal.rate_after(sid, 2)
        local = begin_row(journal)
        journal.add_samples(local, samples(10))
        records = queued(journal)
        uid = journal.session(sid).session_uuid
    kinds = [r.kind for r in records]  # type: ignore[attr-defined]
    assert kinds == [
        "session",
        "samples",
        "samples",
        "samples",
        "fault",
        "comfort",
        "intensity",
        "session",
        "session",
    ]
    assert all(r.session_uuid == uid for r in records)  # type: ignore[attr-defined]
    rows = [row for r in records if isinstance(r, SamplesEntry) for row in r.rows]
    assert len(rows) == 1200 and rows[0] == (0, 0, 0, 0, 2)
    sessions = [r for r in records if isinstance(r, SessionEntry)]
    assert [s.rev for s in sessions] == [0, 1, 2]
    assert (sessions[-1].outcome, sessions[-1].rating_after, sessions[-1].participant) == (
        "completed",
        2,
        "P1",
    )


def test_a_journal_write_and_its_outbox_row_commit_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Journal(tmp_path / "j.db") as journal:
        sid = begin_row(journal, gateway="gw1")
        before = journal.outbox_status().entries

        def disk_full(*args: object, **kwargs: object) -> bool:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(journal.outbox, "add", disk_full)
        with pytest.raises(JournalError, match="disk is full"):
            journal.add_fault(sid, channel=0, t_ms=1, code="x", message="y")
        assert journal.faults(sid) == []
        assert journal.outbox_status().entries == before


def test_an_outbox_past_its_bound_warns_and_past_its_cap_stops_queueing_but_never_journalling(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bound = OutboxBound(warn_units=1000, cap_units=2000)
    with Journal(tmp_path / "j.db", outbox_bound=bound) as journal:
        sid = begin_row(journal, gateway="gw1")
        with caplog.at_level(logging.WARNING, "acudevice.store.outbox"):
            journal.add_samples(sid, samples(900))
            assert not journal.outbox_status().over_warning
            journal.add_samples(sid, samples(400, start=900 * 250))
            status = journal.outbox_status()
            assert status.over_warning and not status.full
            assert "past its warning bound" in caplog.text
            journal.add_samples(sid, samples(800, start=1300 * 250))
            status = journal.outbox_status()
        # 800 rows are two records (500 + 300): the first still fits under the cap
        assert status.units == 1801 and status.not_queued == 300
        assert "outbox full" in caplog.text
        assert len(journal.samples(sid)) == 2100  # the journal kept everything
        journal.acknowledge([(1, status.entries + 1)])
        status = journal.outbox_status()
        assert (status.entries, status.units, status.over_warning) == (0, 0, False)
    with Journal(tmp_path / "j.db") as journal:
        assert journal.outbox_status().not_queued == 300


def test_a_withdrawn_participant_is_deleted_locally_and_refused_afterwards(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path / "j.db") as journal:
        gone = begin_row(journal, participant="P1", gateway="gw1", band="a")
        kept = begin_row(journal, participant="P2", gateway="gw1", band="b")
        for sid in (gone, kept):
            journal.add_samples(sid, samples(20))
            journal.add_fault(sid, channel=0, t_ms=1, code="x", message="y")
            journal.add_comfort_event(
                sid, point="PC6", actuator="pressure", t_ms=1, old_level=2, new_level=1
            )
            journal.add_intensity_change(sid, t_ms=2, percent=50, level=1)
        assert journal.withdraw("P1") == 1
        assert [s.participant for s in journal.sessions(10)] == ["P2"]
        assert journal.comfort_max("pressure", participant="P1") == {}
        assert journal.comfort_max("pressure", participant="P2") == {"PC6": 1}
        assert {r.participant for r in queued(journal)} == {"P2"}  # type: ignore[attr-defined]
        assert journal.outbox_status().entries == len(queued(journal))
        with pytest.raises(InputError, match="withdrawn"):
            begin_row(journal, participant="P1", gateway="gw1")
        db = sqlite3.connect(journal.path)
        for table in ("samples", "faults", "comfort_events", "intensity_changes"):
            count = db.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id=?", (gone,))
            assert count.fetchone()[0] == 0, table
        db.close()
        assert journal.withdrawn() == ["P1"]


def test_a_whole_journal_reads_back_as_the_records_the_outbox_sent(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        sid = begin_row(journal, participant="P1", gateway="gw1", band="a")
        journal.add_samples(sid, samples(30))
        journal.add_fault(sid, channel=0, t_ms=1, code="x", message="y")
        journal.end_session(sid, outcome="stopped")
        local = begin_row(journal)
        journal.add_samples(local, samples(5))
        sent = queued(journal)
        per_session = list(journal.records("laptop"))
    assert per_session[0][0] == sent[-1]  # the newest revision of the session
    assert per_session[0][1:] == sent[1:3]
    assert per_session[1][0].gateway == "laptop"  # type: ignore[union-attr]

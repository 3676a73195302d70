"""The journal keeps a trial participant's delivered protocol and missed windows: from a
database of any earlier schema, and never past a withdrawal."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from acudevice.store import SCHEMA_VERSION, Journal, database

pytestmark = pytest.mark.unit
OPENS = dt.datetime(2027, 1, 16, 8, tzinfo=dt.UTC)
CLOSES = OPENS + dt.timedelta(hours=2)


def keep(journal: Journal, participant: str, body: bytes = b'{"v": 1}') -> None:
    journal.protocols.keep(
        participant, topic=f"acudevice/study/participants/{participant}/protocol",
        study="nausea-trial", label="Study programme", program="study-programme", body=body,
    )  # fmt: skip


@pytest.mark.parametrize("start", range(SCHEMA_VERSION))
def test_a_journal_of_every_earlier_schema_keeps_protocols_once_migrated(
    start: int, tmp_path: Path
) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        for step in database.MIGRATIONS[:start]:
            step(db)
        db.execute(f"PRAGMA user_version={start}")
    with Journal(path) as journal:
        keep(journal, "P1")
        journal.protocols.checked("P1", CLOSES)
        assert journal.protocols.record_missed(
            "P1", "nausea-trial", day=1, window=1, opens=OPENS, closes=CLOSES
        )
    with Journal(path) as journal:  # and they are there after a restart
        [stored] = journal.protocols.all()
        assert (stored.participant, stored.label, stored.body) == (
            "P1",
            "Study programme",
            b'{"v": 1}',
        )
        assert stored.checked_at == CLOSES.timestamp()
        [missed] = journal.protocols.missed("P1")
        assert (missed.day, missed.window, missed.closes) == (1, 1, CLOSES.timestamp())


def test_the_same_protocol_again_keeps_its_check_and_a_missed_window_is_recorded_once(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        keep(journal, "P1")
        journal.protocols.checked("P1", CLOSES)
        keep(journal, "P1", b'{"v": 1, "again": true}')
        stored = journal.protocols.get("P1")
        assert stored is not None and stored.checked_at == CLOSES.timestamp()
        assert stored.body == b'{"v": 1, "again": true}'
        journal.protocols.keep(
            "P1", topic="t", study="other", label="L", program="l", body=b"{}", keep_checked=False
        )
        assert (again := journal.protocols.get("P1")) is not None and again.checked_at is None
        for first in (True, False):
            assert first == journal.protocols.record_missed(
                "P1", "nausea-trial", day=1, window=2, opens=OPENS, closes=CLOSES
            )
        assert len(journal.protocols.missed("P1")) == 1
        assert journal.protocols.labels() == {("P1", "l"): "L"}


def test_withdrawal_deletes_the_protocol_and_missed_windows_and_dropping_keeps_the_misses(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        for who in ("P1", "P2"):
            keep(journal, who)
            journal.protocols.record_missed(
                who, "nausea-trial", day=1, window=1, opens=OPENS, closes=CLOSES
            )
        journal.withdraw("P1")
        assert journal.protocols.get("P1") is None and journal.protocols.missed("P1") == []
        assert journal.protocols.drop("P2") and not journal.protocols.drop("P2")
        assert journal.protocols.get("P2") is None and len(journal.protocols.missed("P2")) == 1

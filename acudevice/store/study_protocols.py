"""A trial on this host: each participant's delivered protocol, and the windows they missed.

The study centre delivers a participant's protocol as one retained MQTT message
(bridge/participant_protocol.py); a gateway (or `acudevice study fetch` on a single host)
keeps the latest here, as received, so it survives a restart and works without the broker:
reminders go on, `acudevice run --scheduled` finds the program, `history` shows the label.
The store does not read the message (it is the bridge's format); it keeps the columns others
need: the label and the program name it stands for.

`checked_at` is when that participant's reminders were last checked: a gateway restarted
after a window closed still reports it missed, once. Missed windows are kept per participant,
study, day and window, so recording one twice is harmless.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from acudevice.store.identity import check_participant


@dataclass(frozen=True)
class StoredProtocol:
    participant: str
    topic: str
    """Where it came from (`<prefix>/study/participants/<ID>/protocol`)."""
    study: str
    label: str
    program: str
    """The program name the label stands for (`study-programme`)."""
    body: bytes
    """The message as received."""
    received_at: float
    checked_at: float | None


@dataclass(frozen=True)
class MissedWindow:
    participant: str
    study: str
    day: int
    window: int
    opens: float
    closes: float
    recorded_at: float


class StudyProtocols:
    """Delivered protocols and missed windows of one journal database; `Journal.protocols`."""

    def __init__(
        self,
        db: sqlite3.Connection,
        transaction: Callable[[], AbstractContextManager[None]],
        path: Path,
    ) -> None:
        self._db = db
        self._transaction = transaction
        self.path = path

    def keep(
        self,
        participant: str,
        *,
        topic: str,
        study: str,
        label: str,
        program: str,
        body: bytes,
        keep_checked: bool = True,
    ) -> None:
        """Keep `participant`'s protocol, replacing the one before; `keep_checked` False when
        it is not the same timetable (reminders start from now, not from the old check)."""
        check_participant(participant)
        with self._transaction():
            self._db.execute(
                "INSERT INTO study_protocols VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
                " ON CONFLICT(participant) DO UPDATE SET topic=excluded.topic,"
                " study=excluded.study, label=excluded.label, program=excluded.program,"
                " body=excluded.body, received_at=excluded.received_at"
                + ("" if keep_checked else ", checked_at=NULL"),
                (participant, topic, study, label, program, body.decode(), time.time()),
            )

    def drop(self, participant: str) -> bool:
        """Forget `participant`'s protocol (withdrawn); their missed windows stay."""
        with self._transaction():
            cur = self._db.execute(
                "DELETE FROM study_protocols WHERE participant=?", (participant,)
            )
        return cur.rowcount > 0

    def get(self, participant: str) -> StoredProtocol | None:
        row = self._db.execute(
            "SELECT * FROM study_protocols WHERE participant=?", (participant,)
        ).fetchone()
        return None if row is None else _protocol(row)

    def all(self) -> list[StoredProtocol]:
        rows = self._db.execute("SELECT * FROM study_protocols ORDER BY participant").fetchall()
        return [_protocol(r) for r in rows]

    def labels(self) -> dict[tuple[str, str], str]:
        """(participant, program name) -> label: what `history` shows for their sessions."""
        rows = self._db.execute("SELECT participant, program, label FROM study_protocols")
        return {(r[0], r[1]): r[2] for r in rows}

    def checked(self, participant: str, at: dt.datetime) -> None:
        with self._transaction():
            self._db.execute(
                "UPDATE study_protocols SET checked_at=? WHERE participant=?",
                (at.timestamp(), participant),
            )

    def record_missed(
        self,
        participant: str,
        study: str,
        *,
        day: int,
        window: int,
        opens: dt.datetime,
        closes: dt.datetime,
    ) -> bool:
        """Record a window that closed with no session; False if it was recorded before."""
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO missed_windows VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (participant, study, day, window, opens.timestamp(), closes.timestamp(),
                 time.time()),
            )  # fmt: skip
        return cur.rowcount > 0

    def missed(self, participant: str, study: str | None = None) -> list[MissedWindow]:
        rows = self._db.execute(
            "SELECT participant, study, day, window_no, opens, closes, recorded_at"
            " FROM missed_windows WHERE participant=? AND study=COALESCE(?, study)"
            " ORDER BY opens",
            (participant, study),
        ).fetchall()
        return [MissedWindow(*r) for r in rows]

    def session_starts(self, participant: str) -> list[tuple[float, str]]:
        """(started_at, outcome) of every journalled session of `participant`."""
        rows = self._db.execute(
            "SELECT started_at, outcome FROM sessions WHERE participant=? ORDER BY started_at",
            (participant,),
        )
        return [(r[0], r[1]) for r in rows]

    def forget(self, participant: str) -> None:
        """Inside the caller's transaction (a withdrawal): everything of `participant`."""
        self._db.execute("DELETE FROM study_protocols WHERE participant=?", (participant,))
        self._db.execute("DELETE FROM missed_windows WHERE participant=?", (participant,))


def _protocol(row: sqlite3.Row) -> StoredProtocol:
    return StoredProtocol(
        row["participant"], row["topic"], row["study"], row["label"], row["program"],
        row["body"].encode(), row["received_at"], row["checked_at"],
    )  # fmt: skip

"""The outbox: records waiting for the centre, written in the journal's own transactions.

A row is added in the same SQLite transaction as the journal write it describes, so the
journal and the outbox never disagree after a crash; it is deleted only when the centre
acknowledges it (after its own commit). Delivery is therefore at-least-once, and the
records' keys let the centre drop what it already has.

The outbox is bounded, and a full outbox never blocks a session: past `warn_units` it warns
(log + `status().over_warning`); past `cap_units` new records are not queued (the journal
row is still written) and `status().not_queued` counts them, so they can be brought to the
centre later with `acudevice ingest --journal`. A unit is one sample row, or one other record.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger("acudevice.store.outbox")

SAMPLES_PER_S = 4
"""What the journal keeps per channel (session/recorder.py: one sample per 250 ms)."""
BAND_CHANNELS = 2
DEFAULT_WARN_UNITS = 7 * 86_400 * SAMPLES_PER_S * BAND_CHANNELS
"""Seven days of one two-channel band, recorded without a pause: 4,838,400 sample rows
(about 130 MB of outbox)."""
DEFAULT_CAP_UNITS = 4 * DEFAULT_WARN_UNITS
"""Four weeks of one band: past this nothing more is queued (the journal keeps it all)."""


@dataclass(frozen=True)
class OutboxBound:
    warn_units: int = DEFAULT_WARN_UNITS
    cap_units: int = DEFAULT_CAP_UNITS

    def __post_init__(self) -> None:
        if not 0 < self.warn_units <= self.cap_units:
            raise ValueError("the outbox bound needs 0 < warn_units <= cap_units")


@dataclass(frozen=True)
class OutboxStatus:
    entries: int
    units: int
    over_warning: bool
    """Past the warning bound: the centre has not confirmed for a long while."""
    full: bool
    """At the hard cap: new records are counted in `not_queued` instead of queued."""
    not_queued: int
    epoch: str


@dataclass(frozen=True)
class Pending:
    seq: int
    committed_at: float
    body: str


class Outbox:
    """The outbox table of one journal connection (which owns the transactions)."""

    def __init__(self, db: sqlite3.Connection, bound: OutboxBound | None = None) -> None:
        self._db = db
        self.bound = bound or OutboxBound()
        row = db.execute("SELECT COUNT(*), COALESCE(SUM(units), 0) FROM outbox").fetchone()
        # Kept here rather than counted per write: another process writing the same journal
        # shifts these a little until the next open, which a bound in days does not notice.
        self._entries, self._units = int(row[0]), int(row[1])
        self.epoch = self._meta("epoch") or ""
        self._warned = self._warned_full = False

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM outbox_meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def add(self, body: str, *, participant: str | None, units: int) -> bool:
        """Queue one encoded record; call inside the journal write's transaction."""
        if self._units + units > self.bound.cap_units:
            self._db.execute(
                "INSERT INTO outbox_meta VALUES ('not_queued', ?) ON CONFLICT(key) DO UPDATE"
                " SET value = CAST(value AS INTEGER) + excluded.value",
                (units,),
            )
            if not self._warned_full:
                log.warning(
                    "outbox full (%d of %d units): new records are journalled but not queued "
                    "for the centre; check the broker and the ingester",
                    self._units,
                    self.bound.cap_units,
                )
                self._warned_full = True
            return False
        self._db.execute(
            "INSERT INTO outbox (created_at, participant, units, body) VALUES (?, ?, ?, ?)",
            (time.time(), participant, units, body),
        )
        self._entries += 1
        self._units += units
        if self._units > self.bound.warn_units and not self._warned:
            log.warning(
                "outbox holds %d units, past its warning bound of %d: the centre has not "
                "confirmed records for a long while",
                self._units,
                self.bound.warn_units,
            )
            self._warned = True
        return True

    def pending(self, after_seq: int, limit: int) -> list[Pending]:
        rows = self._db.execute(
            "SELECT seq, created_at, body FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [Pending(int(r[0]), float(r[1]), str(r[2])) for r in rows]

    def delete(self, ranges: Sequence[tuple[int, int]]) -> int:
        """Delete acknowledged rows; call inside a transaction. Returns how many went."""
        gone = units = 0
        for first, last in ranges:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(units), 0) FROM outbox WHERE seq BETWEEN ? AND ?",
                (first, last),
            ).fetchone()
            self._db.execute("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (first, last))
            gone, units = gone + int(row[0]), units + int(row[1])
        self._entries -= gone
        self._units -= units
        if self._units <= self.bound.warn_units:
            self._warned = self._warned_full = False
        return gone

    def forget(self, participant: str) -> None:
        """Drop a withdrawn participant's rows; call inside a transaction."""
        self._db.execute("DELETE FROM outbox WHERE participant=?", (participant,))
        row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(units), 0) FROM outbox").fetchone()
        self._entries, self._units = int(row[0]), int(row[1])

    def status(self) -> OutboxStatus:
        return OutboxStatus(
            entries=self._entries,
            units=self._units,
            over_warning=self._units > self.bound.warn_units,
            full=self._units + 1 > self.bound.cap_units,
            not_queued=int(self._meta("not_queued") or 0),
            epoch=self.epoch,
        )


def new_epoch() -> str:
    return uuid.uuid4().hex

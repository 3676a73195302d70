"""The comfort memory: the maximum remembered per point, and every change to it.

A "too strong" in a session only ever lowers a maximum (`Journal.add_comfort_event`). The
only other ways to change one are `set` and `reset` here, which take a reason and log who,
when, why, from what and to what, in the same transaction as the change: nothing raises a
maximum a person lowered without a line in the log saying so.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from acudevice.errors import InputError, Problem
from acudevice.store.identity import check_participant
from acudevice.store.models import ComfortChange, RememberedComfort
from acudevice.store.records import MAX_TEXT

ACTUATORS = ("pressure", "vibration")
MAX_LEVEL = {"pressure": 40_000, "vibration": 1_000}
"""The highest maximum that can be remembered: the absolute ceiling, or full intensity."""


def _check(actuator: str, level: int | None, reason: str, who: str) -> str:
    if actuator not in ACTUATORS:
        raise ValueError(f"actuator must be one of {ACTUATORS}, not {actuator!r}")
    if level is not None and not 0 < level <= MAX_LEVEL[actuator]:
        raise ValueError(f"a {actuator} maximum must be 1 to {MAX_LEVEL[actuator]}, not {level}")
    reason = reason.strip()
    if not reason:
        raise InputError([Problem("--reason", "", "say why the maximum changes; it is logged")])
    if len(reason) > MAX_TEXT:
        raise InputError([Problem("--reason", "", f"at most {MAX_TEXT} characters")])
    if not who:
        raise ValueError("who made the change must be named")
    return reason


class ComfortMemory:
    """Remembered maxima of one journal database; `Journal.comfort_memory`."""

    def __init__(
        self,
        db: sqlite3.Connection,
        transaction: Callable[[], AbstractContextManager[None]],
        path: Path,
    ) -> None:
        self._db = db
        self._transaction = transaction
        self.path = path

    def maxima(self, *, participant: str | None = None) -> list[RememberedComfort]:
        """Every remembered maximum of `participant` (None: the single-host user)."""
        key = _key(participant)
        rows = self._db.execute(
            "SELECT point, actuator, level, updated_at FROM comfort_max WHERE participant=?"
            " ORDER BY actuator, point",
            (key,),
        ).fetchall()
        return [RememberedComfort(participant=participant, **dict(r)) for r in rows]

    def set(
        self,
        point: str,
        actuator: str,
        level: int,
        *,
        reason: str,
        who: str,
        participant: str | None = None,
    ) -> ComfortChange:
        """Remember `level` for the point, higher or lower than before, and log why."""
        reason = _check(actuator, level, reason, who)
        change = self._change(
            point, actuator, level, reason=reason, who=who, participant=participant
        )
        assert change is not None  # a level is always written
        return change

    def reset(
        self, point: str, actuator: str, *, reason: str, who: str, participant: str | None = None
    ) -> ComfortChange | None:
        """Forget the point's maximum and log why; None (nothing logged) if none was kept."""
        reason = _check(actuator, None, reason, who)
        return self._change(point, actuator, None, reason=reason, who=who, participant=participant)

    def log(self, *, participant: str | None = None) -> list[ComfortChange]:
        """Every change to `participant`'s maxima, oldest first: "too strong" in sessions and
        the changes made by hand."""
        key = _key(participant)
        by_hand = self._db.execute(
            "SELECT point, actuator, old_level, new_level, reason, who, at FROM comfort_changes"
            " WHERE participant=? ORDER BY n",
            (key,),
        ).fetchall()
        pressed = self._db.execute(
            "SELECT c.point, s.actuator, c.old_level AS felt_level, c.new_level, c.at,"
            " c.session_id FROM comfort_events AS c JOIN sessions AS s ON s.id = c.session_id"
            " WHERE COALESCE(s.participant, '') = ? ORDER BY c.at",
            (key,),
        ).fetchall()
        changes = [
            ComfortChange(
                kind="set" if r["new_level"] is not None else "reset",
                participant=participant,
                **dict(r),
            )
            for r in by_hand
        ]
        changes += [
            ComfortChange(kind="too-strong", participant=participant, old_level=None, **dict(r))
            for r in pressed
        ]
        return sorted(changes, key=lambda c: c.at)

    def _change(
        self,
        point: str,
        actuator: str,
        level: int | None,
        *,
        reason: str,
        who: str,
        participant: str | None,
    ) -> ComfortChange | None:
        key = _key(participant)
        now = time.time()
        with self._transaction():
            if (
                participant is not None
                and self._db.execute(
                    "SELECT 1 FROM withdrawn WHERE participant=?", (participant,)
                ).fetchone()
            ):
                raise InputError(
                    [Problem("participant", "", f"{participant!r} has withdrawn from the study")]
                )
            row = self._db.execute(
                "SELECT level FROM comfort_max WHERE participant=? AND point=? AND actuator=?",
                (key, point, actuator),
            ).fetchone()
            old = None if row is None else int(row[0])
            if level is None:
                if old is None:
                    return None
                self._db.execute(
                    "DELETE FROM comfort_max WHERE participant=? AND point=? AND actuator=?",
                    (key, point, actuator),
                )
            else:
                self._db.execute(
                    "INSERT INTO comfort_max VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT(participant, point, actuator) DO UPDATE"
                    " SET level=excluded.level, updated_at=excluded.updated_at",
                    (key, point, actuator, level, now),
                )
            self._db.execute(
                "INSERT INTO comfort_changes (participant, point, actuator, old_level,"
                " new_level, reason, who, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, point, actuator, old, level, reason, who, now),
            )
        return ComfortChange(
            kind="set" if level is not None else "reset",
            participant=participant,
            point=point,
            actuator=actuator,
            old_level=old,
            new_level=level,
            reason=reason,
            who=who,
            at=now,
        )

    def forget(self, participant: str) -> None:
        """A withdrawn participant's log goes with their maxima (inside the caller's
        transaction)."""
        self._db.execute("DELETE FROM comfort_changes WHERE participant=?", (participant,))


def _key(participant: str | None) -> str:
    return "" if participant is None else check_participant(participant)

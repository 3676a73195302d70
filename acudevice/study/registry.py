"""Who may send records (the gateway registry) and who has left the study (withdrawals).

Withdrawing deletes the participant's sessions, samples and events centrally and records the
withdrawal, under the exclusive write lock: an ingester's transaction in progress finishes
first, and every later one refuses the participant's records. The retained MQTT notice that
tells the gateways (topic `<prefix>/study/withdrawn/<ID>`) is sent by the caller after the
commit (acudevice/cli/study.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acudevice.bridge.topics import check_segment
from acudevice.store.identity import check_participant
from acudevice.study.schema import WRITE_LOCK


async def add_gateways(conn: Any, names: list[str]) -> int:
    """Register gateways (idempotent); returns how many were new."""
    for name in names:
        check_segment(name, "gateway")
    status = await conn.execute(
        "INSERT INTO gateways (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", names
    )
    return int(status.split()[-1])


async def gateways(conn: Any) -> list[tuple[str, Any, Any]]:
    rows = await conn.fetch("SELECT name, registered_at, last_seen FROM gateways ORDER BY name")
    return [(r["name"], r["registered_at"], r["last_seen"]) for r in rows]


@dataclass(frozen=True)
class Withdrawal:
    participant: str
    sessions: int
    samples: int


async def withdraw(conn: Any, participant: str) -> Withdrawal:
    check_participant(participant)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
        await conn.execute(
            "INSERT INTO withdrawn (participant) VALUES ($1) ON CONFLICT DO NOTHING", participant
        )
        ids = [
            r[0]
            for r in await conn.fetch(
                "SELECT session_uuid FROM sessions WHERE participant = $1", participant
            )
        ]
        samples = 0
        for table in ("samples", "faults", "comfort_events", "intensity_changes"):
            status = await conn.execute(
                f"DELETE FROM {table} WHERE session_uuid = any($1::uuid[])", ids
            )
            if table == "samples":
                samples = int(status.split()[-1])
        await conn.execute("DELETE FROM sessions WHERE participant = $1", participant)
    return Withdrawal(participant, len(ids), samples)

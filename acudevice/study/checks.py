"""What the centre accepts: a batch from a gateway's topic, checked before anything is written.

Two stages. `parse_batch` (pure, once per message) refuses a whole batch that cannot be
acknowledged anyway: oversized, not JSON, not our envelope, or naming another gateway than
its topic does. Inside, each record is checked on its own, so one bad record is refused
(logged with its gateway and sequence number, then acknowledged so the gateway drops it)
without holding back its neighbours. `admit` (inside the database transaction, against the
registry read there) refuses a gateway that is not registered — unacknowledged, so a gateway
registered late loses nothing — and records of withdrawn participants.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from acudevice.store.records import MAX_BATCH_BYTES, RECORD, Batch, Record, SessionEntry

log = logging.getLogger("acudevice.study.ingest")
_GATEWAY = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a topic level, as bridge/topics.py makes them


class Refused(Exception):
    """A whole batch is dropped without an acknowledgement."""


@dataclass
class Parsed:
    gateway: str
    epoch: str
    seqs: list[int]
    """Every entry of the batch: acknowledged once the batch is committed."""
    records: list[tuple[int, float, Record]]
    """(seq, when the gateway committed it, record) for each record that passed."""
    refused: int = 0


@dataclass
class Admitted:
    records: list[Record] = field(default_factory=list)
    committed_at: list[float] = field(default_factory=list)
    refused: int = 0


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    return f"{where}: {first['msg']}"  # never the value: it may be anything


def parse_batch(gateway: str, payload: bytes) -> Parsed:
    """The records of one batch from `gateway`'s topic; Refused for a batch to drop."""
    if len(payload) > MAX_BATCH_BYTES:
        raise Refused(f"a batch of {len(payload)} bytes is over the limit of {MAX_BATCH_BYTES}")
    try:
        batch = Batch.model_validate_json(payload)
    except ValidationError as exc:
        raise Refused(f"not a records batch ({_reason(exc)})") from None
    if batch.gw != gateway:
        raise Refused(f"the batch names gateway {batch.gw!r}, not the one of its topic")
    parsed = Parsed(gateway, batch.epoch, [e.seq for e in batch.entries], [])
    for entry in batch.entries:
        try:
            record = RECORD.validate_python(entry.r)
        except ValidationError as exc:
            log.warning("gateway %s: refused record %d: %s", gateway, entry.seq, _reason(exc))
            parsed.refused += 1
            continue
        if isinstance(record, SessionEntry) and record.gateway != gateway:
            log.warning(
                "gateway %s: refused record %d: a session of gateway %r",
                gateway,
                entry.seq,
                record.gateway,
            )
            parsed.refused += 1
            continue
        parsed.records.append((entry.seq, entry.t, record))
    return parsed


def admit(parsed: Parsed, gateways: set[str], withdrawn: set[str]) -> Admitted:
    """What of a parsed batch may be stored, given the registry; Refused for an unknown gateway."""
    if parsed.gateway not in gateways:
        raise Refused("gateway not registered (acudevice study gateways NAME registers it)")
    out = Admitted(refused=parsed.refused)
    for seq, committed_at, record in parsed.records:
        if record.participant is not None and record.participant in withdrawn:
            log.warning(
                "gateway %s: refused record %d: participant %s has withdrawn",
                parsed.gateway,
                seq,
                record.participant,
            )
            out.refused += 1
            continue
        out.records.append(record)
        out.committed_at.append(committed_at)
    return out


def gateway_of(topic: str, prefix: str) -> str | None:
    """The gateway of `<prefix>/<gateway>/records`, or None for any other topic."""
    head = prefix + "/"
    if not topic.startswith(head) or not topic.endswith("/records"):
        return None
    gateway = topic[len(head) : -len("/records")]
    return gateway if _GATEWAY.fullmatch(gateway) else None

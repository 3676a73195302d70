"""Records for the centre: what a gateway's outbox holds and what the ingester accepts.

One record per journal write, as a frozen pydantic model (extra fields forbidden, strict
numbers: a string where a number belongs is refused, never coerced). Each carries a key the
centre de-duplicates on, because delivery is at-least-once:

- `session`: `session_uuid`; `rev` grows with each update (begin 0, end, rating), and the
  centre keeps the highest revision it has seen, whatever order they arrive in;
- `samples`: up to `MAX_ROWS` rows of one session, each keyed (`session_uuid`, channel, `t_ms`);
- `fault`, `comfort`, `intensity`: (`session_uuid`, `n`), `n` counting that kind from 1 in
  the session.

Records travel as JSON in a `Batch` (`RECORD_VERSION` names the format), which keeps the
payload readable with `mosquitto_sub`; docs/study.md gives the measured sizes.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, TypeAdapter

from acudevice.store.identity import PARTICIPANT_PATTERN

RECORD_VERSION = 1
MAX_ROWS = 500
"""Sample rows in one record: a journal write of more is split, so a record stays small."""
MAX_BATCH_ENTRIES = 2000
MAX_BATCH_BYTES = 1 << 20
"""A batch payload larger than this is refused unread by the centre (and never built)."""

Uuid = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Participant = Annotated[str, StringConstraints(pattern=f"^{PARTICIPANT_PATTERN}$")]
MAX_TEXT = 1000
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
# Numbers are strict (a string or a bool is refused, not coerced); lists stay lax so a JSON
# array can fill a tuple.
Int32 = Annotated[int, Strict(), Field(ge=-(2**31), le=2**31 - 1)]
Count = Annotated[int, Strict(), Field(ge=0, le=1_000_000)]
Ordinal = Annotated[int, Strict(), Field(ge=1, le=1_000_000)]
Channel = Annotated[int, Strict(), Field(ge=0, le=255)]
Tms = Annotated[int, Strict(), Field(ge=0, le=2**31 - 1)]
State = Annotated[int, Strict(), Field(ge=0, le=255)]
Rating = Annotated[int, Strict(), Field(ge=0, le=10)]
Epoch = Annotated[float, Strict(), Field(ge=0, le=1e11, allow_inf_nan=False)]
Finite = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=-1e9, le=1e9)]
Seq = Annotated[int, Strict(), Field(ge=1, le=2**62)]
Outcome = Literal[
    "running", "completed", "stopped", "estopped", "link-lost", "faulted", "interrupted"
]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    session_uuid: Uuid
    participant: Participant | None = None


class SessionEntry(_Record):
    kind: Literal["session"] = "session"
    rev: Count
    gateway: Name
    band: Name | None = None
    program: Name
    device_model: Name
    actuator: Literal["pressure", "vibration"]
    cap_level: Int32
    started_at: Epoch
    ended_at: Epoch | None = None
    outcome: Outcome
    detail: Text | None = None
    peak_level: Int32 | None = None
    repeats_done: Count
    repeats_planned: Count
    start_skew_ms: Finite | None = None
    rating_before: Rating | None = None
    rating_after: Rating | None = None


SampleTuple = tuple[Channel, Tms, Int32, Int32, State]


class SamplesEntry(_Record):
    kind: Literal["samples"] = "samples"
    rows: Annotated[list[SampleTuple], Field(min_length=1, max_length=MAX_ROWS)]
    """(channel, t_ms, measured_level, target_level, state), as the journal keeps them."""


class FaultEntry(_Record):
    kind: Literal["fault"] = "fault"
    n: Ordinal
    channel: Channel
    t_ms: Tms | None = None
    code: Name
    message: Text
    at: Epoch


class ComfortEntry(_Record):
    kind: Literal["comfort"] = "comfort"
    n: Ordinal
    point: Name
    t_ms: Tms | None = None
    old_level: Int32 | None = None
    new_level: Int32
    at: Epoch


class IntensityEntry(_Record):
    kind: Literal["intensity"] = "intensity"
    n: Ordinal
    t_ms: Tms | None = None
    percent: Annotated[int, Strict(), Field(ge=0, le=100)]
    level: Int32
    at: Epoch


Record = Annotated[
    SessionEntry | SamplesEntry | FaultEntry | ComfortEntry | IntensityEntry,
    Field(discriminator="kind"),
]
RECORD: TypeAdapter[Record] = TypeAdapter(Record)

EpochId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
"""Names one outbox: an ack for another (an older journal file, a restored backup) is ignored."""


class Entry(BaseModel):
    """One outbox row in a batch; its record is checked on its own, so one bad record is
    refused without refusing its neighbours."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: Seq
    t: Epoch
    """When the gateway committed it (lag is measured from here)."""
    r: dict[str, object]


class Batch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1]
    gw: Name
    epoch: EpochId
    entries: Annotated[list[Entry], Field(max_length=MAX_BATCH_ENTRIES)]


class Ack(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    epoch: EpochId
    seqs: Annotated[list[tuple[Seq, Seq]], Field(max_length=MAX_BATCH_ENTRIES)]
    """Acknowledged outbox rows as inclusive ranges [first, last]."""


def encode(record: _Record) -> str:
    return record.model_dump_json(exclude_none=True)


def encode_batch(gateway: str, epoch: str, entries: list[tuple[int, float, str]]) -> bytes:
    """A batch from stored (seq, committed_at, record JSON) rows, without decoding them."""
    parts = ",".join(f'{{"seq":{seq},"t":{t!r},"r":{body}}}' for seq, t, body in entries)
    head = json.dumps({"v": RECORD_VERSION, "gw": gateway, "epoch": epoch})[:-1]
    return f'{head},"entries":[{parts}]}}'.encode()


def ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted inclusive ranges covering `seqs`: an ack of a whole batch is one pair."""
    out: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if out and out[-1][1] == seq - 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out

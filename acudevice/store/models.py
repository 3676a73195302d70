"""What the journal gives back: sessions, samples, faults and comfort events as models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Outcome = Literal[
    "running", "completed", "stopped", "estopped", "link-lost", "faulted", "interrupted"
]


class SessionRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    session_uuid: str
    gateway: str | None = None
    band: str | None = None
    participant: str | None = None
    program: str
    devices: list[str]
    device_model: str
    actuator: str
    cap_level: int
    confirmations: list[dict[str, Any]]
    schedule: dict[str, Any]
    started_at: float
    ended_at: float | None
    outcome: Outcome
    detail: str | None
    peak_level: int | None
    repeats_done: int
    repeats_planned: int
    start_skew_ms: float | None
    rating_before: int | None
    rating_after: int | None


class Sample(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: int
    t_ms: int
    measured_level: int
    target_level: int
    state: int


SampleRow = tuple[int, int, int, int, int]
"""(channel, t_ms, measured_level, target_level, state): a `Sample` as the journal stores it."""


class FaultRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: int
    t_ms: int | None
    code: str
    message: str


class ComfortEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    point: str
    t_ms: int | None
    old_level: int | None
    new_level: int


class IntensityChange(BaseModel):
    """A remote "intensity" lowering: `percent` of the plan, `level` the cap it set."""

    model_config = ConfigDict(frozen=True)

    t_ms: int | None
    percent: int
    level: int


class CapChange(BaseModel):
    """One step down of a session's cap, from a "too strong" or a lower intensity."""

    model_config = ConfigDict(frozen=True)

    t_ms: int | None
    level: int
    previous: int
    cause: Literal["too-strong", "intensity"]
    felt_level: int | None = None
    """For "too strong": the level measured when it was pressed."""
    percent: int | None = None
    """For "intensity": the percentage of full intensity asked for."""


class RememberedComfort(BaseModel):
    """A comfortable maximum the store remembers for a point (Pa or permille)."""

    model_config = ConfigDict(frozen=True)

    participant: str | None
    point: str
    actuator: str
    level: int
    updated_at: float


class ComfortChange(BaseModel):
    """One change of a remembered maximum: a "too strong" in a session, or set or forgotten
    by hand with a reason."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["too-strong", "set", "reset"]
    participant: str | None
    point: str
    actuator: str
    old_level: int | None
    """set / reset: the maximum remembered before (None: none was)."""
    new_level: int | None
    """None: forgotten (reset). For "too strong": the lowered cap, remembered unless an
    earlier maximum was lower still."""
    at: float
    reason: str | None = None
    who: str | None = None
    felt_level: int | None = None
    """For "too strong": the level measured when it was pressed."""
    session_id: int | None = None

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

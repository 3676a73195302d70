"""Injectable faults, parsed from `fault=` URL options or `--fault` flags.

    drop:MS          the link goes silent (both ways) MS wall milliseconds after connecting
    corrupt:P        each frame, either way, has one byte flipped with probability P
    duplicate:P      each frame, either way, is delivered twice with probability P
    delay:MS         every frame, either way, arrives MS wall milliseconds late (order kept)
    stuck-pump[:MS]  the pump (or motor) driver sticks on MS device ms after the first START
    stuck-valve[:MS] the release (bleed) valve sticks shut MS device ms after the first START
    drift:RATE       the main sensor drifts by RATE per minute of device time from boot, in
                     the surface unit (kPa/min, or intensity fraction/min); may be negative
    offset:VALUE     the main sensor reads VALUE (kPa, or intensity fraction) off from boot;
                     may be negative
    brownout:MS      supply dips MS device ms after the first START: the device reboots
    ignore-limits    test only: broken firmware that acknowledges SET_LIMITS and ignores it
                     (proves that a campaign can see exceedances)

Sensor faults hit the main sensor only; a second, independent sensor (where the model has
one) stays true, as a single fault would leave it.

Link faults count wall time because the link lives in the host's world; device faults count
device time, so a scenario is the same at every simulation speed. Every random choice comes
from generators seeded by the simulation seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from simulator.core.errors import FaultSpecError

FAULT_NAMES = (
    "drop",
    "corrupt",
    "duplicate",
    "delay",
    "stuck-pump",
    "stuck-valve",
    "drift",
    "offset",
    "brownout",
    "ignore-limits",
)


@dataclass(frozen=True)
class FaultPlan:
    drop_after_ms: float | None = None
    corrupt: float = 0.0
    duplicate: float = 0.0
    delay_ms: float = 0.0
    stuck_after_ms: int | None = None
    drift_per_min: float = 0.0
    offset: float = 0.0
    valve_stuck_after_ms: int | None = None
    brownout_after_ms: int | None = None
    ignore_limits: bool = False

    @property
    def link_faults(self) -> bool:
        return (
            self.drop_after_ms is not None
            or self.corrupt > 0
            or self.duplicate > 0
            or self.delay_ms > 0
        )

    @classmethod
    def parse(cls, specs: Iterable[str]) -> FaultPlan:
        fields: dict[str, float | int | bool | None] = {}
        for spec in specs:
            name, _, value = spec.strip().partition(":")
            key, parsed = _parse_one(name.strip().lower(), value.strip(), spec)
            if key in fields:
                raise FaultSpecError(f"fault {name!r} is given twice")
            fields[key] = parsed
        return cls(**fields)  # type: ignore[arg-type]


def _number(value: str, spec: str, *, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise FaultSpecError(f"fault {spec!r}: {what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise FaultSpecError(f"fault {spec!r}: {what} must be finite")
    return number


def _millis(value: str, spec: str, *, default: int | None = None) -> int:
    if not value:
        if default is None:
            raise FaultSpecError(f"fault {spec!r} needs a time in milliseconds, e.g. {spec}:5000")
        return default
    number = _number(value, spec, what="the time in ms")
    if number < 0:
        raise FaultSpecError(f"fault {spec!r}: the time must not be negative")
    return round(number)


def _probability(value: str, spec: str) -> float:
    if not value:
        raise FaultSpecError(f"fault {spec!r} needs a probability, e.g. {spec}:0.1")
    p = _number(value, spec, what="the probability")
    if not 0.0 < p <= 1.0:
        raise FaultSpecError(f"fault {spec!r}: the probability must be in (0, 1]")
    return p


def _parse_one(name: str, value: str, spec: str) -> tuple[str, float | int | bool | None]:
    if name == "drop":
        return "drop_after_ms", _millis(value, spec)
    if name == "corrupt":
        return "corrupt", _probability(value, spec)
    if name == "duplicate":
        return "duplicate", _probability(value, spec)
    if name == "delay":
        return "delay_ms", _millis(value, spec)
    if name == "stuck-pump":
        return "stuck_after_ms", _millis(value, spec, default=0)
    if name == "drift":
        if not value:
            raise FaultSpecError(f"fault {spec!r} needs a rate per minute, e.g. drift:0.5")
        return "drift_per_min", _number(value, spec, what="the drift rate")
    if name == "stuck-valve":
        return "valve_stuck_after_ms", _millis(value, spec, default=0)
    if name == "offset":
        if not value:
            raise FaultSpecError(f"fault {spec!r} needs an offset, e.g. offset:-1.5")
        return "offset", _number(value, spec, what="the offset")
    if name == "brownout":
        return "brownout_after_ms", _millis(value, spec)
    if name == "ignore-limits":
        if value:
            raise FaultSpecError(f"fault {spec!r} takes no value")
        return "ignore_limits", True
    raise FaultSpecError(f"unknown fault {name!r}; known faults: {', '.join(FAULT_NAMES)}")

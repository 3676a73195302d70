"""Simulator options, from a `sim://` URL query or from command-line flags.

    sim://?model=wristband-p1&seed=7&speed=max&fault=corrupt:0.05&fault=stuck-pump:20000

| option  | default        | meaning                                                   |
|---------|----------------|-----------------------------------------------------------|
| model   | wristband-p1   | a device profile name (profiles/devices/*.toml)           |
| seed    | 0              | seeds sensor noise, calibration offset and link faults    |
| speed   | 1              | device seconds per wall second (whole number), or `max`   |
| fault   | none           | repeatable; see `simulator.core.faults`                        |
| battery | 100            | initial charge in percent                                 |
| uptime_s| 0              | seconds since power-on at connect (a band left on for hours) |
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from acudevice.numbers import Span, show
from simulator.core.errors import SimOptionError
from simulator.core.faults import FaultPlan
from simulator.core.models import DEFAULT_MODEL

MAX_SPEED = 0xFFFF
"""INFO's time_scale is a u16."""
WALL_TELEMETRY_FLOOR_S = 0.02
"""At a numeric speed, telemetry is spaced at least this much wall time apart."""
BASE_TELEMETRY_MS = 100
OPTION_NAMES = ("model", "seed", "speed", "fault", "battery", "uptime_s")
MAX_UPTIME_S = 10 * 0x1_0000_0000 / 1000
"""Ten wraps of the 32-bit millisecond counter (about 16 months)."""
SPEED = Span(1, MAX_SPEED)
"""Device seconds per wall second, a whole number (or `max`)."""
BATTERY_PERCENT = Span(0, 100, "%")
UPTIME_S = Span(0, MAX_UPTIME_S, "s")


@dataclass(frozen=True)
class SimOptions:
    model: str = DEFAULT_MODEL
    seed: int = 0
    speed: int | None = 1
    """Device seconds per wall second; None is `max` (as fast as the CPU allows)."""
    fault_specs: tuple[str, ...] = ()
    battery: float = 100.0
    uptime_s: float = 0.0
    """Device time at boot: a real band has usually been on for a while when a host connects."""
    faults: FaultPlan = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "faults", FaultPlan.parse(self.fault_specs))
        for name, value, span in (
            ("battery", self.battery, BATTERY_PERCENT),
            ("uptime_s", self.uptime_s, UPTIME_S),
        ):
            problem = span.complaint(value)
            if problem is not None:
                raise SimOptionError(f"{name}: {problem}")
        if self.speed is not None and self.speed not in SPEED:
            raise SimOptionError(f"speed: {_speed_rule(show(self.speed))}")

    @property
    def time_scale(self) -> int:
        """What INFO reports: the speed, or 0 for unbounded."""
        return 0 if self.speed is None else self.speed

    @property
    def uptime_ms(self) -> int:
        """Whole 100 ms steps, so the firmware's supervisor keeps its rhythm."""
        return round(self.uptime_s * 10) * 100

    @property
    def telemetry_factor(self) -> int:
        """Telemetry periods are multiplied by this so samples stay >= 20 ms wall apart.

        Speed 1..5 keeps the protocol's 100 ms; speed 20 sends every 400 ms of device time.
        At speed=max wall time has no fixed relation to device time, so the protocol period
        is kept (in-process consumers take every sample; determinism needs them all).
        """
        if self.speed is None:
            return 1
        return max(1, math.ceil(self.speed * WALL_TELEMETRY_FLOOR_S * 1000 / BASE_TELEMETRY_MS))

    @classmethod
    def from_url(cls, url: str) -> SimOptions:
        parts = urlsplit(url)
        if parts.scheme != "sim":
            raise SimOptionError(f"{url!r} is not a sim:// URL")
        return cls.from_query(parse_qs(parts.query, keep_blank_values=True))

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> SimOptions:
        unknown = sorted(set(query) - set(OPTION_NAMES))
        if unknown:
            raise SimOptionError(
                f"unknown sim option(s) {', '.join(unknown)}; known: {', '.join(OPTION_NAMES)}"
            )

        def single(name: str) -> str | None:
            values = query.get(name)
            if not values:
                return None
            if len(values) > 1:
                raise SimOptionError(f"sim option {name!r} given {len(values)} times")
            return values[0]

        model = single("model") or DEFAULT_MODEL
        seed = single("seed")
        speed = single("speed")
        battery = single("battery")
        uptime = single("uptime_s")
        return cls(
            model=model,
            seed=parse_seed(seed) if seed is not None else 0,
            speed=parse_speed(speed) if speed is not None else 1,
            fault_specs=tuple(query.get("fault", ())),
            battery=parse_number("battery", battery) if battery is not None else 100.0,
            uptime_s=parse_number("uptime_s", uptime) if uptime is not None else 0.0,
        )

    def to_url(self) -> str:
        query: list[tuple[str, str]] = [("model", self.model), ("seed", str(self.seed))]
        query.append(("speed", "max" if self.speed is None else str(self.speed)))
        query += [("fault", spec) for spec in self.fault_specs]
        if self.battery != 100.0:
            query.append(("battery", f"{self.battery:g}"))
        if self.uptime_s:
            query.append(("uptime_s", repr(self.uptime_s)))
        return "sim://?" + urlencode(query)


def parse_number(name: str, text: str) -> float:
    """A number from a URL query; its range is checked by `SimOptions`."""
    try:
        return float(text)
    except ValueError:
        raise SimOptionError(f"{name}: got {text!r}, not a number") from None


def _speed_rule(got: str) -> str:
    return f"got {got}; must be a whole number of device seconds per wall second, {SPEED}, or 'max'"


def parse_seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise SimOptionError(f"seed: got {text!r}; must be a whole number, at least 0")
    return seed


def parse_speed(text: str) -> int | None:
    """`max` -> None; otherwise a whole number of device seconds per wall second."""
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise SimOptionError(f"speed: {_speed_rule(repr(text))}") from None
    if value not in SPEED or value != int(value):
        raise SimOptionError(f"speed: {_speed_rule(show(value))}")
    return int(value)

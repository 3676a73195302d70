"""The effective envelope: min(absolute ceiling, hardware max, user cap, site cap)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from acudevice.plan.devices import KPA_TO_PA, PressureDevice, VibrationDevice
from acudevice.plan.schedule import Actuator
from acudevice.safety.rules import (
    ABSOLUTE_CEILING_KPA,
    BLEEDING_RISK_FACTOR,
    SENSITIVE_SITE_FACTOR,
    VENT_BETWEEN_REPEATS_KPA,
    RuleId,
)


class CapTerm(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: RuleId
    level: int
    why: str


class Limits(BaseModel):
    """Levels in Pa (pressure) or permille (vibration), as in a Schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actuator: Actuator
    terms: tuple[CapTerm, ...]
    comfort_level: int | None = None
    max_ramp_level_per_s: float
    vent_level: int | None = None
    max_continuous_ms: int | None = None

    @property
    def cap_level(self) -> int:
        return min(t.level for t in self.terms)

    @property
    def binding(self) -> CapTerm:
        return min(self.terms, key=lambda t: t.level)

    @property
    def reference_level(self) -> int:
        """What `target_fraction` is a fraction of: the comfortable maximum, else the cap."""
        if self.comfort_level is None:
            return self.cap_level
        return min(self.comfort_level, self.cap_level)


def effective_limits(
    device: PressureDevice | VibrationDevice,
    *,
    user_cap_level: int | None = None,
    sensitive_site: str | None = None,
    bleeding_risk: str | None = None,
    comfort_level: int | None = None,
) -> Limits:
    """Build the envelope; `user_cap_level` above the device default must be refused by the caller."""
    terms: list[CapTerm] = []
    if isinstance(device, PressureDevice):
        terms.append(
            CapTerm(
                rule=RuleId.ABSOLUTE_CEILING,
                level=round(ABSOLUTE_CEILING_KPA * KPA_TO_PA),
                why="absolute ceiling",
            )
        )
    terms.append(
        CapTerm(
            rule=RuleId.HARDWARE_MAX,
            level=device.hardware_max_level,
            why=f"{device.name} hardware maximum",
        )
    )
    user = device.default_user_cap_level if user_cap_level is None else user_cap_level
    terms.append(
        CapTerm(
            rule=RuleId.USER_CAP,
            level=user,
            why="default user cap" if user_cap_level is None else "your cap",
        )
    )
    base = min(t.level for t in terms)
    if sensitive_site:
        terms.append(
            CapTerm(
                rule=RuleId.SENSITIVE_SITE,
                level=int(base * SENSITIVE_SITE_FACTOR),
                why=f"sensitive site {sensitive_site}: half the cap",
            )
        )
    if bleeding_risk:
        terms.append(
            CapTerm(
                rule=RuleId.BLEEDING_RISK,
                level=int(min(t.level for t in terms) * BLEEDING_RISK_FACTOR),
                why=f"{bleeding_risk}: cap halved unless confirmed",
            )
        )
    if isinstance(device, PressureDevice):
        return Limits(
            actuator="pressure",
            terms=tuple(terms),
            comfort_level=comfort_level,
            max_ramp_level_per_s=device.max_ramp_level_per_s,
            vent_level=round(VENT_BETWEEN_REPEATS_KPA * KPA_TO_PA),
        )
    return Limits(
        actuator="vibration",
        terms=tuple(terms),
        comfort_level=comfort_level,
        max_ramp_level_per_s=device.max_ramp_level_per_s,
        max_continuous_ms=round(device.max_continuous_run_s * 1000),
    )

"""What a device can do. The host checks plans against this before any device sees them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

KPA_TO_PA = 1000
FRACTION_TO_PERMILLE = 1000


class _DeviceBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    channels: int = Field(default=1, ge=1, le=8)


class PressureDevice(_DeviceBase):
    actuator: Literal["pressure"]
    range_kpa: tuple[float, float]
    hardware_max_kpa: float = Field(gt=0)
    default_user_cap_kpa: float = Field(gt=0)
    max_ramp_kpa_per_s: float = Field(gt=0)
    vent_time_s: float = Field(gt=0)
    sensor_resolution_kpa: float = Field(gt=0)
    sensor_tolerance_kpa: float = Field(ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> PressureDevice:
        lo, hi = self.range_kpa
        if not 0 <= lo < hi:
            raise ValueError("range_kpa must be [low, high] with 0 <= low < high")
        if self.hardware_max_kpa > hi:
            raise ValueError("hardware_max_kpa must lie within range_kpa")
        if self.default_user_cap_kpa > self.hardware_max_kpa:
            raise ValueError("default_user_cap_kpa must not exceed hardware_max_kpa")
        return self

    @property
    def hardware_max_level(self) -> int:
        return round(self.hardware_max_kpa * KPA_TO_PA)

    @property
    def default_user_cap_level(self) -> int:
        return round(self.default_user_cap_kpa * KPA_TO_PA)

    @property
    def max_ramp_level_per_s(self) -> float:
        return self.max_ramp_kpa_per_s * KPA_TO_PA


class VibrationDevice(_DeviceBase):
    actuator: Literal["vibration"]
    intensity_range: tuple[float, float] = (0.0, 1.0)
    frequency_range_hz: tuple[float, float]
    max_intensity_change_per_s: float = Field(gt=0)
    max_continuous_run_s: float = Field(gt=0)
    default_user_cap_intensity: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _consistent(self) -> VibrationDevice:
        lo, hi = self.intensity_range
        if not 0 <= lo < hi <= 1:
            raise ValueError("intensity_range must satisfy 0 <= low < high <= 1")
        flo, fhi = self.frequency_range_hz
        if not 0 < flo <= fhi:
            raise ValueError("frequency_range_hz must be [low, high] with 0 < low <= high")
        return self

    @property
    def hardware_max_level(self) -> int:
        return round(self.intensity_range[1] * FRACTION_TO_PERMILLE)

    @property
    def default_user_cap_level(self) -> int:
        return round(self.default_user_cap_intensity * FRACTION_TO_PERMILLE)

    @property
    def max_ramp_level_per_s(self) -> float:
        return self.max_intensity_change_per_s * FRACTION_TO_PERMILLE


DeviceModel = Annotated[PressureDevice | VibrationDevice, Field(discriminator="actuator")]


def format_level(level: float, actuator: str) -> str:
    """A level as a person reads it: '12 kPa' or 'intensity 0.3'."""
    if actuator == "pressure":
        return f"{level / KPA_TO_PA:g} kPa"
    return f"intensity {level / FRACTION_TO_PERMILLE:g}"

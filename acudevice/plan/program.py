"""Program files: a session plan of ramp / hold / release / rest phases, repeated."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    field_validator,
    model_validator,
)

from acudevice.plan.schedule import Actuator, PhaseKind

Side = Literal["left", "right", "both"]

# The absolute ceiling is checked here too, so a file that asks for more fails validation
# before any device or user context is known (facts.md "Defaults we choose").
ABSOLUTE_CEILING_KPA = 40.0
MAX_PHASES = 100
MAX_SITES = 10
CEILING: dict[str, JsonValue] = {"limit": "absolute ceiling", "rule": "absolute-ceiling"}
"""Named in a refusal: "55 kPa is above the absolute ceiling of 40 kPa (rule absolute-ceiling)"."""

# Numbers a person writes must be numbers: "12" or true is refused, never read as 12 or 1.
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Whole = Annotated[int, Strict()]


class Site(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    point: str = Field(min_length=1, description="point code or alias, e.g. PC6 or P6")
    side: Side = "both"

    @property
    def sides(self) -> tuple[Literal["left", "right"], ...]:
        return ("left", "right") if self.side == "both" else (self.side,)


class Phase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: PhaseKind
    duration_s: Number = Field(gt=0, le=3600, description="seconds; must be positive")
    target_kpa: Number | None = Field(
        default=None,
        ge=0,
        le=ABSOLUTE_CEILING_KPA,
        description="pressure target in kPa",
        json_schema_extra=CEILING,
    )
    target_fraction: Number | None = Field(
        default=None, gt=0, le=1, description="target as a fraction of the comfortable maximum"
    )
    target_intensity: Number | None = Field(
        default=None, ge=0, le=1, description="vibration intensity 0-1"
    )
    label: str | None = None

    @field_validator("duration_s")
    @classmethod
    def _whole_milliseconds(cls, value: float) -> float:
        if round(value * 1000) < 1:
            raise ValueError("must be at least 0.001 s (the device counts whole milliseconds)")
        return value

    @model_validator(mode="after")
    def _one_target(self) -> Phase:
        given = [
            n
            for n in ("target_kpa", "target_fraction", "target_intensity")
            if getattr(self, n) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give one target, not {' and '.join(given)}")
        if self.kind is PhaseKind.RAMP and not given:
            raise ValueError(
                "a ramp phase needs a target (target_kpa, target_fraction or target_intensity)"
            )
        if self.kind in (PhaseKind.HOLD, PhaseKind.REST) and given:
            raise ValueError(f"a {self.kind} phase keeps its level and takes no target")
        return self


class Program(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]*$", description="unique slug, e.g. nausea-relief"
    )
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    indication: str = Field(min_length=1)
    actuator: Actuator
    frequency_hz: Number | None = Field(default=None, gt=0, description="vibration frequency")
    repeats: Whole = Field(ge=1, le=100)
    rest_between_s: Number = Field(default=0, ge=0, le=3600)
    sham: bool = Field(
        default=False,
        description="a trial's control, not a treatment: never offered as a gentler program "
        "nor on a gateway's start selector (docs/trials.md)",
    )
    sites: tuple[Site, ...] = Field(min_length=1, max_length=MAX_SITES)
    phases: tuple[Phase, ...] = Field(min_length=1, max_length=MAX_PHASES)

    @field_validator("rest_between_s")
    @classmethod
    def _rest_whole_milliseconds(cls, value: float) -> float:
        if value and round(value * 1000) < 1:
            raise ValueError("must be 0 or at least 0.001 s (whole milliseconds)")
        return value

    @model_validator(mode="after")
    def _units_fit_actuator(self) -> Program:
        for i, phase in enumerate(self.phases):
            if self.actuator == "pressure" and phase.target_intensity is not None:
                raise ValueError(
                    f"phases[{i}]: target_intensity is for vibration programs; use target_kpa"
                )
            if self.actuator == "vibration" and phase.target_kpa is not None:
                raise ValueError(
                    f"phases[{i}]: target_kpa is for pressure programs; use target_intensity"
                )
        if self.actuator == "vibration" and self.frequency_hz is None:
            raise ValueError("a vibration program needs frequency_hz")
        if self.actuator == "pressure" and self.frequency_hz is not None:
            raise ValueError("frequency_hz is for vibration programs only")
        return self

    def phase_label(self, index: int) -> str:
        phase = self.phases[index]
        extra = f" '{phase.label}'" if phase.label else ""
        return f"phases[{index}] ({phase.kind}{extra})"

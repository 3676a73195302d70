"""The user's health profile and personal limits, as a user writes them in a TOML file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, Strict, ValidationError

from acudevice.errors import InputError
from acudevice.files import problems_from_validation, read_toml

# What a person writes is parsed strictly: "5" or true is not a number, nan and inf are refused.
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Flag = Annotated[bool, Strict()]
MAX_CAP_KPA = 40.0
"""The absolute ceiling: no personal cap can be above it (the device default is lower)."""
CEILING: dict[str, JsonValue] = {"limit": "absolute ceiling", "rule": "absolute-ceiling"}

LimbName = Literal["left_arm", "right_arm", "left_leg", "right_leg"]


class LimbCondition(StrEnum):
    """ "Never press over" conditions (University of Minnesota "Taking Charge"; cuff manuals)."""

    WOUND = "wound"
    BROKEN_SKIN = "broken-skin"
    BRUISE = "bruise"
    NEW_SCAR = "new-scar"
    SWELLING = "swelling"
    INFLAMMATION = "inflammation"
    VARICOSE_VEINS = "varicose-veins"
    FRACTURE = "fracture"
    INFECTION = "infection"
    TUMOUR = "tumour"
    IV_LINE = "iv-line"
    AV_SHUNT = "av-shunt"
    MASTECTOMY_SIDE = "mastectomy-side"
    IMPLANTED_DEVICE = "implanted-device"


class HealthProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pregnant: Flag = False
    blood_thinners: Flag = False
    bleeding_disorder: Flag = False
    fragile_skin: Flag = False
    limbs: dict[LimbName, tuple[LimbCondition, ...]] = Field(default_factory=dict)
    cap_kpa: Number | None = Field(
        default=None,
        gt=0,
        le=MAX_CAP_KPA,
        description="personal cap; only lowers",
        json_schema_extra=CEILING,
    )
    cap_intensity: Number | None = Field(default=None, gt=0, le=1)
    comfort_max_kpa: dict[str, Annotated[Number, Field(gt=0, le=MAX_CAP_KPA)]] = Field(
        default_factory=dict,
        description="comfortable maximum per point code, kPa",
        json_schema_extra=CEILING,
    )
    comfort_max_intensity: dict[str, Annotated[Number, Field(gt=0, le=1)]] = Field(
        default_factory=dict
    )

    @property
    def bleeding_risk(self) -> list[str]:
        return [
            label
            for flag, label in (
                (self.blood_thinners, "blood thinners"),
                (self.bleeding_disorder, "bleeding disorder"),
                (self.fragile_skin, "fragile skin"),
            )
            if flag
        ]

    def conditions_on(self, limb: str) -> tuple[LimbCondition, ...]:
        for name, conditions in self.limbs.items():
            if name == limb:
                return conditions
        return ()


def load_profile(path: Path) -> HealthProfile:
    try:
        return HealthProfile.model_validate(read_toml(path))
    except ValidationError as exc:
        raise InputError(problems_from_validation(str(path), exc, HealthProfile)) from None

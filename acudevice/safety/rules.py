"""Every safety rule, with its kind, value and source. Findings and refusals cite these ids.

Values come from the "Defaults we choose" table of shared/domain/facts.md; docs/safety.md
lists the same rules for users.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Severity = Literal["hard", "soft"]

ABSOLUTE_CEILING_KPA = 40.0
SENSITIVE_SITE_FACTOR = 0.5
BLEEDING_RISK_FACTOR = 0.5
HOLD_SOFT_S = 120.0
HOLD_HARD_S = 180.0
REPEATS_SOFT = 5
REPEATS_HARD = 10
MIN_GENTLE_RAMP_S = 10.0
VENT_BETWEEN_REPEATS_KPA = 2.0
HEARTBEAT_INTERVAL_S = 1.0
WATCHDOG_TIMEOUT_S = 3.0
EMERGENCY_VENT_FROM_KPA = 40.0
EMERGENCY_VENT_TO_KPA = 2.0
EMERGENCY_VENT_WITHIN_S = 10.0


class RuleId(StrEnum):
    ABSOLUTE_CEILING = "absolute-ceiling"
    HARDWARE_MAX = "hardware-max"
    USER_CAP = "user-cap"
    SENSITIVE_SITE = "sensitive-site"
    EFFECTIVE_CAP = "effective-cap"
    COMFORT_MAX = "comfort-max"
    HOLD_SOFT = "hold-soft"
    HOLD_HARD = "hold-hard"
    REPEATS_SOFT = "repeats-soft"
    REPEATS_HARD = "repeats-hard"
    GENTLE_RAMP = "gentle-ramp"
    VENT_BETWEEN_REPEATS = "vent-between-repeats"
    DEVICE_RAMP_RATE = "device-ramp-rate"
    PHASE_DIRECTION = "phase-direction"
    CONTINUOUS_RUN = "continuous-run"
    ACTUATOR_MISMATCH = "actuator-mismatch"
    PREGNANCY_POINT = "pregnancy-point"
    LIMB_CONDITION = "limb-condition"
    BLEEDING_RISK = "bleeding-risk"
    HEARTBEAT_WATCHDOG = "heartbeat-watchdog"
    EMERGENCY_VENT = "emergency-vent"


@dataclass(frozen=True)
class Rule:
    id: RuleId
    severity: Severity
    value: str
    source: str


RULES: dict[RuleId, Rule] = {
    r.id: r
    for r in (
        Rule(
            RuleId.ABSOLUTE_CEILING,
            "hard",
            "40 kPa",
            "IEC 80601-2-30 adult cuff maximum 300 mmHg (unverified figure)",
        ),
        Rule(RuleId.HARDWARE_MAX, "hard", "per device model", "profiles/devices/*.toml"),
        Rule(
            RuleId.USER_CAP,
            "hard",
            "20 kPa wrist band default; may only be lowered",
            "facts.md Defaults we choose; user limits only narrow (buttplug)",
        ),
        Rule(
            RuleId.SENSITIVE_SITE,
            "hard",
            "half the cap at face, ear, neck, HT7 and other sensitive points",
            "article: gentle over sensitive areas; facts.md",
        ),
        Rule(
            RuleId.EFFECTIVE_CAP,
            "hard",
            "min(ceiling, hardware max, user cap, site cap)",
            "DESIGN.md safety in depth",
        ),
        Rule(
            RuleId.COMFORT_MAX,
            "soft",
            "recorded comfortable maximum per point",
            "facts.md; infusion-pump soft limits",
        ),
        Rule(RuleId.HOLD_SOFT, "soft", "hold over 120 s", "article: hold 30 s to 2 min"),
        Rule(
            RuleId.HOLD_HARD,
            "hard",
            "hold over 180 s",
            "IEC 80601-2-30 single inflation at most 180 s (unverified figure)",
        ),
        Rule(RuleId.REPEATS_SOFT, "soft", "more than 5 repeats", "article: repeat 3 to 5 times"),
        Rule(RuleId.REPEATS_HARD, "hard", "more than 10 repeats", "facts.md Defaults we choose"),
        Rule(
            RuleId.GENTLE_RAMP,
            "soft",
            "ramp up or down shorter than 10 s",
            "article: increase over about 30 s, decrease gradually",
        ),
        Rule(
            RuleId.VENT_BETWEEN_REPEATS,
            "hard",
            "under 2 kPa before the next repeat and at the end",
            "capillary closing pressure about 4.3 kPa; facts.md",
        ),
        Rule(
            RuleId.DEVICE_RAMP_RATE,
            "hard",
            "per device model (max ramp rate)",
            "profiles/devices/*.toml",
        ),
        Rule(
            RuleId.PHASE_DIRECTION,
            "hard",
            "ramps rise, releases fall, rests start vented",
            "program format",
        ),
        Rule(
            RuleId.CONTINUOUS_RUN,
            "hard",
            "vibration pad maximum continuous run",
            "profiles/devices/*.toml",
        ),
        Rule(
            RuleId.ACTUATOR_MISMATCH,
            "hard",
            "program actuator must match the device",
            "program format",
        ),
        Rule(
            RuleId.PREGNANCY_POINT,
            "hard",
            "points marked pregnancy_avoid in profiles/points.toml are refused in pregnancy",
            "article; Trials 2022; facts.md",
        ),
        Rule(
            RuleId.LIMB_CONDITION,
            "hard",
            "wound, swelling, IV line, AV shunt, mastectomy side: refused for that side",
            "University of Minnesota Taking Charge; cuff-device manuals",
        ),
        Rule(
            RuleId.BLEEDING_RISK,
            "soft",
            "blood thinners, bleeding disorder, fragile skin: cap halved unless confirmed",
            "facts.md ask a clinician first",
        ),
        Rule(
            RuleId.HEARTBEAT_WATCHDOG,
            "hard",
            "heartbeat every 1 s; firmware vents after 3 s without",
            "facts.md dead-man switch",
        ),
        Rule(
            RuleId.EMERGENCY_VENT,
            "hard",
            "40 kPa to under 2 kPa within 10 s",
            "IEC 80601-2-30 rapid exhaust (unverified figure)",
        ),
    )
}

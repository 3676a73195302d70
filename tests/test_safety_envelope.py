"""The safety envelope: caps, hard refusals, soft confirmations."""

import pytest

from acudevice.plan.library import load_device, load_points
from acudevice.safety.profile import HealthProfile, LimbCondition
from acudevice.safety.rules import RuleId
from acudevice.safety.screening import screen
from tests.plan_helpers import program

BAND = load_device("wristband-p1")
PAD = load_device("vibepad-v1")
CATALOG = load_points()


def rules(findings: tuple) -> set[RuleId]:
    return {f.rule for f in findings}


def test_nausea_relief_shape_is_ok_with_the_default_cap() -> None:
    verdict = screen(program(), BAND, CATALOG)
    assert verdict.status == "ok" and verdict.runnable
    assert verdict.limits is not None and verdict.limits.cap_level == 20_000
    assert verdict.limits.binding.rule is RuleId.USER_CAP


def test_effective_cap_is_the_minimum_of_all_terms() -> None:
    verdict = screen(program(), BAND, CATALOG, HealthProfile(cap_kpa=15))
    assert verdict.limits is not None
    assert {t.rule: t.level for t in verdict.limits.terms} == {
        RuleId.ABSOLUTE_CEILING: 40_000,
        RuleId.HARDWARE_MAX: 40_000,
        RuleId.USER_CAP: 15_000,
    }
    assert verdict.limits.cap_level == 15_000


def test_target_above_the_cap_is_refused_naming_the_phase_not_clamped() -> None:
    verdict = screen(program(), BAND, CATALOG, HealthProfile(cap_kpa=10))
    assert verdict.status == "refused" and verdict.schedule is None
    [finding] = verdict.hard
    assert finding.rule is RuleId.EFFECTIVE_CAP and finding.where == "phases[0] (ramp)"
    assert "12 kPa exceeds the cap 10 kPa" in finding.message


def test_a_personal_cap_may_only_lower_the_default() -> None:
    verdict = screen(program(), BAND, CATALOG, HealthProfile(cap_kpa=30))
    assert RuleId.USER_CAP in rules(verdict.hard)


def test_sensitive_site_halves_the_cap() -> None:
    verdict = screen(program(sites=[{"point": "HT7"}]), BAND, CATALOG)
    assert verdict.status == "refused"
    assert verdict.limits is not None and verdict.limits.cap_level == 10_000
    assert verdict.limits.binding.rule is RuleId.SENSITIVE_SITE


@pytest.mark.parametrize("code", sorted(p.code for p in CATALOG if p.pregnancy_avoid))
def test_pregnancy_refuses_the_points_to_avoid(code: str) -> None:
    verdict = screen(
        program(
            sites=[{"point": code}],
            phases=[
                {"kind": "ramp", "duration_s": 30, "target_kpa": 8},
                {"kind": "release", "duration_s": 30},
            ],
        ),
        BAND,
        CATALOG,
        HealthProfile(pregnant=True),
    )
    assert verdict.status == "refused"
    assert any(f.rule is RuleId.PREGNANCY_POINT and code in f.message for f in verdict.hard)


def test_pregnancy_allows_p6() -> None:
    assert screen(program(), BAND, CATALOG, HealthProfile(pregnant=True)).status == "ok"


def test_limb_condition_refuses_that_side_and_names_it() -> None:
    profile = HealthProfile(limbs={"left_arm": (LimbCondition.IV_LINE,)})
    verdict = screen(program(), BAND, CATALOG, profile)
    [finding] = verdict.hard
    assert finding.rule is RuleId.LIMB_CONDITION
    assert "left arm has iv-line" in finding.message and "right side only" in finding.message
    assert (
        screen(program(sites=[{"point": "PC6", "side": "right"}]), BAND, CATALOG, profile).status
        == "ok"
    )


def test_leg_conditions_do_not_block_a_wrist_band() -> None:
    profile = HealthProfile(limbs={"left_leg": (LimbCondition.SWELLING,)})
    assert screen(program(), BAND, CATALOG, profile).status == "ok"


def test_bleeding_risk_halves_the_cap_unless_confirmed_and_records_the_reason() -> None:
    profile = HealthProfile(blood_thinners=True)
    verdict = screen(program(), BAND, CATALOG, profile)
    assert verdict.status == "needs-confirmation" and not verdict.runnable
    assert rules(verdict.soft) == {RuleId.BLEEDING_RISK}
    confirmed = screen(program(), BAND, CATALOG, profile, confirm_reason="cleared by Dr Lee")
    assert confirmed.status == "ok" and confirmed.limits is not None
    assert confirmed.limits.cap_level == 20_000
    [record] = confirmed.confirmed
    assert record.rule is RuleId.BLEEDING_RISK and record.reason == "cleared by Dr Lee"


def test_bleeding_risk_program_under_the_halved_cap_runs_under_the_halved_cap() -> None:
    gentle = program(
        phases=[
            {"kind": "ramp", "duration_s": 30, "target_kpa": 8},
            {"kind": "hold", "duration_s": 60},
            {"kind": "release", "duration_s": 30},
        ]
    )
    verdict = screen(gentle, BAND, CATALOG, HealthProfile(fragile_skin=True))
    assert verdict.status == "ok" and verdict.limits is not None
    assert verdict.limits.cap_level == 10_000 and verdict.schedule is not None
    assert verdict.schedule.cap_level == 10_000


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"repeats": 6}, RuleId.REPEATS_SOFT),
        (
            {
                "phases": [
                    {"kind": "ramp", "duration_s": 30, "target_kpa": 12},
                    {"kind": "hold", "duration_s": 150},
                    {"kind": "release", "duration_s": 30},
                ]
            },
            RuleId.HOLD_SOFT,
        ),
        (
            {
                "phases": [
                    {"kind": "ramp", "duration_s": 8, "target_kpa": 12},
                    {"kind": "hold", "duration_s": 60},
                    {"kind": "release", "duration_s": 30},
                ]
            },
            RuleId.GENTLE_RAMP,
        ),
    ],
)
def test_soft_rules_ask_for_confirmation(overrides: dict, rule: RuleId) -> None:
    verdict = screen(program(**overrides), BAND, CATALOG)
    assert verdict.status == "needs-confirmation" and rule in rules(verdict.soft)
    assert (
        screen(program(**overrides), BAND, CATALOG, confirm_reason="study protocol").status == "ok"
    )


def test_blank_confirmation_reason_confirms_nothing() -> None:
    assert (
        screen(program(repeats=6), BAND, CATALOG, confirm_reason="  ").status
        == "needs-confirmation"
    )


@pytest.mark.parametrize(
    ("overrides", "rule"),
    [
        ({"repeats": 11}, RuleId.REPEATS_HARD),
        (
            {
                "phases": [
                    {"kind": "ramp", "duration_s": 30, "target_kpa": 12},
                    {"kind": "hold", "duration_s": 200},
                    {"kind": "release", "duration_s": 30},
                ]
            },
            RuleId.HOLD_HARD,
        ),
        (
            {
                "phases": [
                    {"kind": "ramp", "duration_s": 30, "target_kpa": 12},
                    {"kind": "hold", "duration_s": 60},
                ]
            },
            RuleId.VENT_BETWEEN_REPEATS,
        ),
        (
            {
                "phases": [
                    {"kind": "ramp", "duration_s": 2, "target_kpa": 12},
                    {"kind": "release", "duration_s": 30},
                ]
            },
            RuleId.DEVICE_RAMP_RATE,
        ),
    ],
)
def test_hard_rules_refuse_even_with_a_confirmation(overrides: dict, rule: RuleId) -> None:
    verdict = screen(program(**overrides), BAND, CATALOG, confirm_reason="please")
    assert verdict.status == "refused" and rule in rules(verdict.hard)


def test_comfort_maximum_is_a_soft_limit_and_fractions_use_it() -> None:
    profile = HealthProfile(comfort_max_kpa={"PC6": 10})
    assert RuleId.COMFORT_MAX in rules(screen(program(), BAND, CATALOG, profile).soft)
    half = program(
        phases=[
            {"kind": "ramp", "duration_s": 30, "target_fraction": 0.5},
            {"kind": "hold", "duration_s": 60},
            {"kind": "release", "duration_s": 30},
        ]
    )
    verdict = screen(half, BAND, CATALOG, profile)
    assert verdict.status == "ok" and verdict.schedule is not None
    assert verdict.schedule.peak_level == 5_000


def test_vibration_program_on_a_pressure_band_is_refused() -> None:
    vib = program(
        actuator="vibration",
        frequency_hz=120,
        phases=[
            {"kind": "ramp", "duration_s": 10, "target_intensity": 0.3},
            {"kind": "release", "duration_s": 10},
        ],
    )
    verdict = screen(vib, BAND, CATALOG)
    assert rules(verdict.hard) == {RuleId.ACTUATOR_MISMATCH}
    assert screen(vib, PAD, CATALOG).status == "ok"


def test_vibration_pad_continuous_run_limit_is_hard() -> None:
    vib = program(
        actuator="vibration",
        frequency_hz=120,
        repeats=1,
        phases=[
            {"kind": "ramp", "duration_s": 10, "target_intensity": 0.3},
            *[{"kind": "hold", "duration_s": 170}] * 8,
            {"kind": "release", "duration_s": 10},
        ],
    )
    assert RuleId.CONTINUOUS_RUN in rules(screen(vib, PAD, CATALOG).hard)

"""The compiler: deterministic, inside the envelope, and every refusal names a rule."""

from hypothesis import given, settings
from hypothesis import strategies as st

from acudevice.plan.library import load_device
from acudevice.plan.program import Program
from acudevice.plan.schedule import PhaseKind
from acudevice.safety.compiler import compile_program
from acudevice.safety.findings import PlanRefused
from acudevice.safety.limits import effective_limits
from acudevice.safety.rules import RuleId
from tests.plan_helpers import program

BAND = load_device("wristband-p1")
PAD = load_device("vibepad-v1")

durations = st.floats(min_value=0.5, max_value=400, allow_nan=False).map(lambda x: round(x, 1))


@st.composite
def phases(draw: st.DrawFn, actuator: str) -> dict:
    kind = draw(st.sampled_from(list(PhaseKind)))
    phase: dict = {"kind": kind.value, "duration_s": draw(durations)}
    if kind is PhaseKind.RAMP or (kind is PhaseKind.RELEASE and draw(st.booleans())):
        if actuator == "vibration":
            phase["target_intensity"] = draw(st.floats(0, 1).map(lambda x: round(x, 3)))
        elif draw(st.booleans()):
            phase["target_fraction"] = draw(st.floats(0.01, 1).map(lambda x: round(x, 3)))
        else:
            phase["target_kpa"] = draw(st.floats(0, 40).map(lambda x: round(x, 2)))
    return phase


@st.composite
def programs(draw: st.DrawFn) -> Program:
    actuator = draw(st.sampled_from(["pressure", "vibration"]))
    extra = {"frequency_hz": 120} if actuator == "vibration" else {}
    return program(
        actuator=actuator,
        repeats=draw(st.integers(1, 12)),
        rest_between_s=draw(st.sampled_from([0, 5, 30])),
        phases=draw(st.lists(phases(actuator), min_size=1, max_size=6)),
        **extra,
    )


@settings(max_examples=400, deadline=None)
@given(programs(), st.integers(1_000, 40_000), st.sampled_from([None, 8_000]))
def test_schedule_stays_inside_the_envelope_or_refusal_names_rules(
    prog: Program, user_cap: int, comfort: int | None
) -> None:
    device = BAND if prog.actuator == "pressure" else PAD
    cap = min(user_cap, device.default_user_cap_level) if prog.actuator == "pressure" else None
    limits = effective_limits(device, user_cap_level=cap, comfort_level=comfort)
    try:
        schedule = compile_program(prog, limits, device)
    except PlanRefused as refused:
        assert refused.findings and all(isinstance(f.rule, RuleId) for f in refused.findings)
        assert all(f.message for f in refused.findings)
        return
    assert schedule.peak_level <= limits.cap_level
    assert all(s.slope_per_s <= limits.max_ramp_level_per_s * (1 + 1e-9) for s in schedule.segments)
    t = 0
    for seg in schedule.segments:
        assert seg.start_ms == t, "segments are contiguous from zero"
        t = seg.end_ms
    if limits.vent_level is not None:
        assert schedule.segments[-1].to_level < limits.vent_level
    assert compile_program(prog, limits, device) == schedule, "deterministic"


def test_nausea_relief_compiles_to_twelve_segments_of_eight_minutes() -> None:
    limits = effective_limits(BAND)
    schedule = compile_program(program(), limits, BAND)
    assert schedule.total_ms == 480_000 and len(schedule.segments) == 12
    assert schedule.peak_level == 12_000
    assert set(schedule.phase_peaks().values()) == {12_000}
    assert schedule.level_at(15_000) == 6_000  # halfway up the first ramp


def test_rest_between_repeats_is_a_vented_segment() -> None:
    schedule = compile_program(program(repeats=2, rest_between_s=10), effective_limits(BAND), BAND)
    rests = [s for s in schedule.segments if s.phase is PhaseKind.REST]
    assert len(rests) == 1 and rests[0].from_level == rests[0].to_level == 0
    assert schedule.total_ms == 2 * 120_000 + 10_000


def test_refusal_says_which_phase_the_device_cannot_follow() -> None:
    fast = program(
        phases=[
            {"kind": "ramp", "duration_s": 3, "target_kpa": 12},
            {"kind": "release", "duration_s": 30},
        ]
    )
    try:
        compile_program(fast, effective_limits(BAND), BAND)
    except PlanRefused as refused:
        [finding] = refused.findings
        assert finding.rule is RuleId.DEVICE_RAMP_RATE and finding.where == "phases[0] (ramp)"
        assert "lengthen the phase" in finding.message
    else:
        raise AssertionError("a 4 kPa/s ramp on a 2 kPa/s pump must be refused")

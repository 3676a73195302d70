"""A program made gentler never loosens safety: it is only ever weaker, and screened in full.

Pure: no device, no event loop. The command-line side is in tests/test_gentler_runs.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acudevice.errors import InputError
from acudevice.plan.library import ProgramLibrary, load_device
from acudevice.plan.program import Program
from acudevice.safety.compiler import compile_program
from acudevice.safety.fitting import Adjustment, adjust, fit_under, on_one_side, scaled
from acudevice.safety.forward import ways_forward
from acudevice.safety.limits import effective_limits
from acudevice.safety.profile import HealthProfile
from acudevice.safety.screening import screen

pytestmark = pytest.mark.unit

LIBRARY = ProgramLibrary()
CATALOG = LIBRARY.catalog
BAND = load_device("wristband-p1")
SHIPPED = [program for _, program in LIBRARY.load_all().values()]
NAUSEA = LIBRARY.get("nausea-relief")


def peak(program: Program) -> int:
    return compile_program(program, effective_limits(BAND), BAND).peak_level


def program(**changes: Any) -> Program:
    return NAUSEA.model_copy(update=changes)


def test_scaling_lowers_absolute_targets_and_leaves_fractions() -> None:
    mixed = program(
        phases=(
            NAUSEA.phases[0],
            NAUSEA.phases[1],
            NAUSEA.phases[2].model_copy(update={"target_kpa": 1.5}),
        )
    )
    half = scaled(mixed, 0.5)
    assert [p.target_kpa for p in half.phases] == [6.0, None, 0.75]
    chemo = LIBRARY.get("chemo-nausea")
    assert scaled(chemo, 0.5).phases[0].target_fraction == 0.5
    with pytest.raises(ValueError, match="only scaled down"):
        scaled(NAUSEA, 1.2)


@settings(max_examples=60, deadline=None)
@given(level=st.integers(min_value=1, max_value=30_000), index=st.integers(0, len(SHIPPED) - 1))
def test_a_fitted_program_never_peaks_above_the_level_nor_the_original(
    level: int, index: int
) -> None:
    original = SHIPPED[index]
    if original.actuator != "pressure" or any(p.target_fraction for p in original.phases):
        return
    fitted, factor = fit_under(original, level)
    assert 0 < factor <= 1
    assert peak(fitted) <= min(level, peak(original))
    for before, after in zip(original.phases, fitted.phases, strict=True):
        assert (after.target_kpa or 0) <= (before.target_kpa or 0)
        assert after.kind == before.kind and after.duration_s == before.duration_s
    if peak(original) > level:
        assert peak(fitted) >= level - 1  # as close under the level as whole Pa allow


def test_at_comfort_is_screened_in_full_so_a_hard_limit_still_refuses() -> None:
    pregnant = HealthProfile(pregnant=True, comfort_max_kpa={"LI4": 6})
    headache = LIBRARY.get("headache")
    fitted = adjust(headache, BAND, CATALOG, pregnant, Adjustment(at_comfort=True))
    assert peak(fitted.program) == 6_000
    verdict = screen(fitted.program, BAND, CATALOG, pregnant)
    assert verdict.status == "refused"
    assert [str(f.rule) for f in verdict.hard] == ["pregnancy-point"]


def test_fitting_names_the_flag_that_cannot_apply() -> None:
    with pytest.raises(InputError, match="--at-comfort: no comfortable maximum is known for PC6"):
        adjust(NAUSEA, BAND, CATALOG, HealthProfile(), Adjustment(at_comfort=True))
    with pytest.raises(InputError, match="--at-halved-cap: your profile names no bleeding risk"):
        adjust(NAUSEA, BAND, CATALOG, HealthProfile(), Adjustment(at_halved_cap=True))
    strong_fraction = LIBRARY.get("chemo-nausea").model_copy(
        update={
            "phases": tuple(
                p.model_copy(update={"target_fraction": 0.8}) if p.target_fraction else p
                for p in LIBRARY.get("chemo-nausea").phases
            )
        }
    )
    with pytest.raises(InputError, match="target_fraction phases reach 16 kPa"):
        adjust(
            strong_fraction,
            BAND,
            CATALOG,
            HealthProfile(blood_thinners=True),
            Adjustment(at_halved_cap=True),
        )


def test_one_side_moves_both_sides_and_refuses_the_other() -> None:
    right = on_one_side(NAUSEA, "right")
    assert [s.side for s in right.sites] == ["right"]
    with pytest.raises(InputError, match=r"--side: nausea-relief: sites\[0\] .* right side only"):
        on_one_side(right, "left")


@pytest.mark.parametrize(
    "me",
    [
        HealthProfile(comfort_max_kpa={"PC6": 8.4}),
        HealthProfile(blood_thinners=True),
        HealthProfile(limbs={"left_arm": ("iv-line",)}),  # type: ignore[dict-item]
        HealthProfile(
            fragile_skin=True,
            comfort_max_kpa={"PC6": 7},
            limbs={"right_arm": ("wound",)},  # type: ignore[dict-item]
        ),
    ],
)
def test_every_way_offered_passes_full_screening_and_is_never_stronger(me: HealthProfile) -> None:
    asked = screen(NAUSEA, BAND, CATALOG, me)
    assert asked.status != "ok"
    ways = ways_forward(NAUSEA, BAND, CATALOG, me, programs=SHIPPED)
    assert ways, "a gentler way exists for each of these people"
    for way in ways:
        base = LIBRARY.get(way.program)
        again = screen(adjust(base, BAND, CATALOG, me, way.adjustment).program, BAND, CATALOG, me)
        assert again.status == "ok" and again.schedule is not None
        assert again.schedule.peak_level == way.peak_level <= peak(NAUSEA)
        assert way.adjustment != Adjustment() or way.other_program

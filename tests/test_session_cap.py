"""The session's one cap: lowered by the person, never raised, and "too strong" from what was felt."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acudevice.session.cap import Cap, CapCause

pytestmark = pytest.mark.unit


def test_too_strong_is_seventy_percent_of_what_was_felt_not_of_the_plan() -> None:
    """Regression: pressed at 4.4 kPa on a ramp to 12 kPa, the cap became 8.4 kPa (70 % of the
    plateau) and the band went on rising. It is 70 % of the 4.4 kPa felt."""
    cap = Cap(20_000, planned_peak=12_000)
    level = cap.too_strong_level(felt=4_400)
    assert level == 3_080
    change = cap.lower(level, CapCause.TOO_STRONG)
    assert change is not None and (change.level, change.previous) == (3_080, 20_000)
    assert cap.current == 3_080 and cap.comfort == 3_080


def test_a_cap_is_never_raised_by_any_cause() -> None:
    cap = Cap(20_000, planned_peak=12_000)
    assert cap.lower(cap.intensity_level(50), CapCause.INTENSITY) is not None
    assert cap.current == 6_000 and cap.percent == 50
    assert cap.lower(8_000, CapCause.TOO_STRONG) is None, "above the current cap: refused"
    assert cap.lower(cap.intensity_level(80), CapCause.INTENSITY) is None
    assert cap.lower(30_000, CapCause.SCREENED) is None
    assert cap.current == 6_000


@given(
    screened=st.integers(1, 40_000),
    peak=st.integers(0, 40_000),
    steps=st.lists(
        st.tuples(
            st.sampled_from([CapCause.TOO_STRONG, CapCause.INTENSITY]), st.integers(0, 50_000)
        ),
        max_size=20,
    ),
)
def test_whatever_is_asked_the_cap_only_goes_down(
    screened: int, peak: int, steps: list[tuple[CapCause, int]]
) -> None:
    cap = Cap(screened, planned_peak=peak)
    before = cap.current
    for cause, felt in steps:
        level = cap.too_strong_level(felt) if cause is CapCause.TOO_STRONG else felt
        cap.lower(level, cause)
        assert 0 < cap.current <= before
        before = cap.current


@given(felt=st.integers(0, 40_000), current=st.integers(2, 40_000))
def test_too_strong_never_lands_above_what_was_felt_or_the_cap(felt: int, current: int) -> None:
    cap = Cap(current, planned_peak=current)
    level = cap.too_strong_level(felt)
    assert level < cap.current
    assert level <= max(felt, 1)

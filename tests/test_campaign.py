"""The safety campaign: a small seeded run passes, and a broken firmware makes it fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator import campaign as campaign_module
from simulator.campaign import (
    ACTIONS,
    FAULT_KINDS,
    RunResult,
    scenarios,
    shipped_programs,
)
from simulator.cli import main

pytestmark = pytest.mark.sim

SMALL_RUNS = len(FAULT_KINDS) * len(ACTIONS) * len(shipped_programs())
"""Every fault kind x every host action x every shipped program (both device kinds) once."""


def campaign(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(["campaign", "--json", "--jobs", "24", *args])
    return code, json.loads(capsys.readouterr().out)


# Not `model`: run once, compiled. Pure Python it takes a minute more and would show nothing
# new: test_sim_core proves the two models say the same bytes, fault by fault.
@pytest.mark.timeout(600)  # a hang guard, not a speed check: 440 sessions, ~90 s when idle
def test_a_small_campaign_has_no_exceedance_no_hang_and_an_honest_journal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, figures = campaign(capsys, "--runs", str(SMALL_RUNS), "--seed", "1")
    assert figures["runs"] == SMALL_RUNS
    assert figures["exceedances"] == 0, figures["failures"]
    assert figures["hangs"] == 0, figures["failures"]
    assert figures["journal_mismatches"] == 0
    assert code == 0
    assert figures["samples"] > 100 * SMALL_RUNS, "the true level was checked all along"
    vent = figures["vent_s"]
    assert isinstance(vent, dict) and vent["count"] > 20
    assert vent["max"] <= 10.0, "every fault vented within the device's vent deadline"
    assert isinstance(figures["device_seconds"], float) and figures["device_seconds"] > 0
    assert figures["wall_seconds"]
    by_fault = figures["by_fault"]
    assert isinstance(by_fault, dict)
    kinds = {key.split(" ")[1] for key in by_fault}
    assert kinds == set(FAULT_KINDS), "every fault kind has its own worst figure"
    assert sum(row["runs"] for row in by_fault.values()) == SMALL_RUNS
    assert all(row["worst_vs_cap"]["value"] <= 1.0 for row in by_fault.values())


@pytest.mark.model
def test_firmware_that_ignores_set_limits_is_caught_as_exceedances(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Proof the campaign can fail: the host lowers the cap ("too strong") and the broken
    firmware keeps the old level, which only the true-level probe sees."""
    code, figures = campaign(
        capsys, "--runs", "7", "--seed", "5", "--fault", "ignore-limits", "--action", "comfort"
    )
    assert isinstance(figures["exceedances"], int) and figures["exceedances"] > 0
    worst = figures["worst_overshoot"]
    assert isinstance(worst, dict) and worst["value"] > 1.0
    by_fault = figures["by_fault"]
    assert isinstance(by_fault, dict)
    assert sum(row["exceedances"] for row in by_fault.values()) == figures["exceedances"]
    assert code == 1


def test_the_scenarios_cover_every_program_fault_and_action() -> None:
    programs = shipped_programs()
    assert len(FAULT_KINDS) * len(ACTIONS) * len(programs) == SMALL_RUNS
    plan = scenarios(len(FAULT_KINDS) * len(ACTIONS) * len(programs), seed=0)
    assert {s.program for s in plan} == set(programs)
    assert {s.model for s in plan} == {"wristband-p1", "vibepad-v1"}
    assert {s.action for s in plan} == set(ACTIONS)
    faults = {(s.fault or "").split(":")[0] for s in plan} | {
        "drop" for s in plan if s.link_cut_ms is not None
    }
    assert faults >= {"", "drop", "corrupt", "duplicate", "stuck-pump", "stuck-valve"}
    assert faults >= {"drift", "offset", "brownout"}
    assert any((s.fault or "").startswith("drift:-") for s in plan)
    assert any((s.fault or "").startswith("offset:-") for s in plan)
    assert plan == scenarios(len(plan), seed=0), "seeded: the same plan every time"


def test_bad_campaign_input_is_refused_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", "--runs", "0"]) == 2
    assert main(["campaign", "--runs", "2", "--fault", "explode"]) == 2
    assert main(["campaign", "--runs", "2", "--action", "dance"]) == 2
    err = capsys.readouterr().err
    assert "--runs 0" in err and "unknown fault 'explode'" in err and "'dance'" in err
    assert "Traceback" not in err


@pytest.mark.model
async def test_a_run_starved_among_others_is_run_again_alone_before_it_counts_as_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    programs = shipped_programs()
    scenario = scenarios(1, 0, faults=["none"], actions=["none"])[0]
    timed_out = RunResult(scenario, "hang", "", hang=True)
    again = await campaign_module._confirm_hang(timed_out, programs, tmp_path)
    assert not again.hang and again.slow_under_load and again.outcome == "completed"

    over = RunResult(scenario, "hang", "", hang=True, exceedance_samples=3)
    assert await campaign_module._confirm_hang(over, programs, tmp_path) is over

    monkeypatch.setattr(campaign_module, "HANG_S", 0.001)  # a session that never ends
    still = await campaign_module._confirm_hang(timed_out, programs, tmp_path)
    assert still.hang and not still.slow_under_load

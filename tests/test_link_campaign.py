"""The link campaign: a small seeded run settles every cut, and anything unsettled fails it.

The full runs (4 bands x 200 disconnects per transport) are `make campaign`; their figures
are in docs/simulator.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from simulator import link_campaign_cli
from simulator.cli import main
from simulator.link_campaign import CampaignResult, CutResult, SessionCheck
from simulator.link_cuts import KINDS, OUT_OF_REACH, SILENT_S, Cut, plan

pytestmark = pytest.mark.wire


def campaign(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(["link-campaign", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.timeout(300)  # a hang guard, not a speed check: about 20 s when idle
def test_a_small_ble_campaign_settles_every_cut_and_its_journals_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, figures = campaign(
        capsys, "--transport", "ble", "--bands", "2", "--disconnects", "6", "--seed", "1"
    )
    assert figures["disconnects"] == 6
    assert figures["hung"] == 0 and figures["neither"] == 0, figures["failures"]
    assert figures["recovered"] + figures["vented"] == 6  # type: ignore[operator]
    assert figures["journal_mismatches"] == 0
    assert figures["sessions"], "sessions ran, and each journal row was checked"
    by_kind = figures["by_kind"]
    assert isinstance(by_kind, dict) and set(by_kind) <= set(KINDS["ble"])
    worst_vent = figures["worst_vent_s"]
    assert isinstance(worst_vent, float) and worst_vent < 3.5, "vented, as the watchdog does"
    assert code == 0


def test_the_same_seed_plans_the_same_cuts_and_spreads_them_over_bands_and_kinds() -> None:
    cuts = plan("pty", 4, 200, seed=7)
    assert cuts == plan("pty", 4, 200, seed=7)
    assert cuts != plan("pty", 4, 200, seed=8)
    assert [c.band for c in cuts[:8]] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert {c.kind for c in cuts} == set(KINDS["pty"])
    for cut in cuts:
        if cut.kind in OUT_OF_REACH:
            assert cut.hold_s > 0, cut
        elif cut.kind == "silent-line":
            assert SILENT_S[0] <= cut.hold_s <= SILENT_S[1], cut
    assert {c.kind for c in plan("ble", 2, 60, seed=0)} == set(KINDS["ble"])
    assert {c.kind for c in plan("tcp", 2, 60, seed=0)} == set(KINDS["tcp"])


def test_a_hung_cut_or_a_disagreeing_journal_fails_the_campaign(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proof the campaign can fail: what it reports decides the exit status."""
    result = CampaignResult("tcp", 1, 3)
    result.cuts = [
        CutResult(Cut(0, 0, "reset", 1.0), "recovered", "", 0.8, 0.5, "HOST_ESTOP"),
        CutResult(Cut(1, 0, "refused", 1.0, 2.0), "hung", "lost, and neither back nor ended"),
    ]
    result.sessions = [SessionCheck(4, "stopped", False, "peak: journal 900, session 1000")]

    async def canned(*_args: object, **_kwargs: object) -> CampaignResult:
        return result

    monkeypatch.setattr(link_campaign_cli, "run_link_campaign", canned)
    code, figures = campaign(capsys, "--transport", "tcp", "--bands", "1", "--disconnects", "2")
    assert code == 1
    assert (figures["recovered"], figures["hung"], figures["journal_mismatches"]) == (1, 1, 1)
    failures = figures["failures"]
    assert isinstance(failures, list) and len(failures) == 2
    code = main(["link-campaign", "--transport", "tcp", "--bands", "1", "--disconnects", "2"])
    table = capsys.readouterr().out
    assert code == 1 and "FAIL cut 1 on band 0: refused for 2.0 s: hung" in table


@pytest.mark.parametrize(
    ("flag", "says"),
    [("--bands", "--bands 0: must be at least 1"), ("--disconnects", "--disconnects 0: must")],
)
def test_a_count_below_one_is_one_line_and_exit_two(
    capsys: pytest.CaptureFixture[str], flag: str, says: str
) -> None:
    assert main(["link-campaign", "--transport", "tcp", flag, "0"]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


def test_an_unknown_transport_is_one_line_and_exit_two(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["link-campaign", "--transport", "usb"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "invalid choice: 'usb'" in err
    assert len(err.strip().splitlines()) == 1


def test_the_campaign_keeps_its_bonds_out_of_the_users_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACUDEVICE_HOME", str(tmp_path / "mine"))
    seen: list[str] = []

    async def peek(*_args: object, **_kwargs: object) -> CampaignResult:
        seen.append(os.environ["ACUDEVICE_HOME"])
        return CampaignResult("ble", 1, 0)

    monkeypatch.setattr(link_campaign_cli, "run_link_campaign", peek)
    assert link_campaign_cli.run(transport="ble", bands=1, disconnects=1, seed=0, as_json=True) == 0
    assert seen and seen[0] != str(tmp_path / "mine") and "link-campaign" in seen[0]
    assert os.environ["ACUDEVICE_HOME"] == str(tmp_path / "mine"), "restored afterwards"

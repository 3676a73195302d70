"""Participants on the command line and in bridge.toml: checked at start-up, in one line.

A participant id goes into topics, file names and the central store, and decides whose
comfort maxima screen a session: anything that is not a pseudonym, a band the gateway does
not have, one person on two bands, or a profile for nobody stops the command before it
connects to anything, with exit status 2 and one line naming the flag or the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from acudevice.bridge.config import build_options, load_file
from acudevice.bridge.gateway import BridgeOptions
from acudevice.errors import InputError
from acudevice.safety.profile import HealthProfile
from acudevice.store import Journal
from acudevice.store.identity import is_participant
from tests.journal_helpers import begin_row

pytestmark = pytest.mark.unit

runner = CliRunner()
BRIDGE = [
    "bridge",
    "--broker",
    "mqtt://127.0.0.1:1",
    "--device",
    "left=sim://",
    "--device",
    "right=sim://?seed=2",
]


def invoke(argv: list[str]) -> Result:
    from acudevice.cli.main import app

    return runner.invoke(app, argv)


def app_run(argv: list[str]) -> tuple[int, str]:
    result = invoke(argv)
    return result.exit_code, result.stderr


def assert_one_line(code: int, stderr: str, *words: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error:"), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in stderr


def profile_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--participant", "left=P/1"], ["--participant left", "not a participant pseudonym"]),
        (["--participant", "left=P 1"], ["not a participant pseudonym"]),
        (["--participant", "left=" + "x" * 33], ["not a participant pseudonym"]),
        (["--participant", "left"], ["--participant", "not BAND=ID"]),
        (["--participant", "=P1"], ["not BAND=ID"]),
        (["--participant", "wrist=P1"], ["no band 'wrist'", "left, right"]),
        (
            ["--participant", "left=P1", "--participant", "right=P1"],
            ["P1 is on bands left and right"],
        ),
        (["--participant", "left=P1", "--participant", "left=P2"], ["'left' is given twice"]),
        (
            ["--participant", "left=P1", "--participant-profile", "P2=p.toml"],
            ["--participant-profile", "P2, who is on no band"],
        ),
        (["--participant-profile", "P1"], ["--participant-profile", "not ID=FILE"]),
    ],
    ids=[
        "slash",
        "space",
        "too-long",
        "no-id",
        "no-band",
        "unknown-band",
        "two-bands",
        "band-twice",
        "profile-for-nobody",
        "profile-no-file",
    ],
)
def test_bad_participants_on_the_bridge_command_line_are_refused_in_one_line(
    args: list[str], words: list[str]
) -> None:
    assert_one_line(*app_run([*BRIDGE, *args]), *words)


def test_a_missing_participant_profile_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nobody.toml"
    code, stderr = app_run(
        [*BRIDGE, "--participant", "left=P1", "--participant-profile", f"P1={missing}"]
    )
    assert_one_line(code, stderr, str(missing), "file not found")


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('[participants]\nleft = "P 1"\n', ["bridge.toml: participants left", "pseudonym"]),
        ('[participants]\nwrist = "P1"\n', ["bridge.toml: participants", "no band 'wrist'"]),
        ("[participants]\nleft = 17\n", ["bridge.toml", "participants.left"]),
        (
            '[participants]\nleft = "P1"\n[participant_profiles]\nP9 = "x.toml"\n',
            ["bridge.toml: participant_profiles", "P9, who is on no band"],
        ),
    ],
    ids=["bad-id", "unknown-band", "not-a-string", "profile-for-nobody"],
)
def test_bad_participants_in_bridge_toml_are_refused_naming_the_file(
    tmp_path: Path, table: str, words: list[str]
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(table)
    assert_one_line(*app_run([*BRIDGE, "--config", str(config)]), *words)


def test_bridge_toml_assigns_participants_and_profiles_and_flags_win(tmp_path: Path) -> None:
    careful = profile_file(tmp_path, "careful", "blood_thinners = true\n")
    capped = profile_file(tmp_path, "capped", "cap_kpa = 8.0\n")
    config = tmp_path / "bridge.toml"
    config.write_text(
        'broker = "mqtt://127.0.0.1:1"\ndevices = ["left=sim://", "right=sim://?seed=2"]\n'
        f'[participants]\nleft = "P1"\nright = "P2"\n'
        f'[participant_profiles]\nP1 = "{careful}"\nP2 = "{careful}"\n'
    )

    def options(**flags: list[str]) -> BridgeOptions:
        return build_options(
            load_file(config),
            broker=None,
            ca=None,
            username=None,
            password_file=None,
            gateway="gw1",
            devices=[],
            prefix=None,
            allow_remote_start=False,
            ha_discovery=False,
            telemetry_hz=None,
            broker_grace_s=None,
            remote_max_s=None,
            sim_fleet=None,
            sim_speed=1,
            profile=HealthProfile(cap_kpa=15.0),
            **flags,
        )

    from_file = options().participants
    assert dict(from_file.by_band) == {"left": "P1", "right": "P2"}
    assert from_file.profile("left", HealthProfile()).blood_thinners
    overridden = options(participant_profiles=[f"P2={capped}"]).participants
    assert overridden.profile("right", HealthProfile()).cap_kpa == 8.0
    assert overridden.profile("left", HealthProfile()).blood_thinners


def test_flags_replace_the_file_s_participants_so_its_profiles_must_still_fit(
    tmp_path: Path,
) -> None:
    careful = profile_file(tmp_path, "careful", "blood_thinners = true\n")
    config = tmp_path / "bridge.toml"
    config.write_text(f'[participants]\nleft = "P1"\n[participant_profiles]\nP1 = "{careful}"\n')
    code, stderr = app_run([*BRIDGE, "--config", str(config), "--participant", "left=P3"])
    assert_one_line(code, stderr, "participant_profiles", "P1, who is on no band")


def test_a_band_without_a_participant_uses_the_gateway_profile(tmp_path: Path) -> None:
    from acudevice.bridge.participants import Participants

    own = HealthProfile(cap_kpa=9.0)
    gateway = HealthProfile(cap_kpa=15.0)
    who = Participants({"left": "P1", "right": "P2"}, {"P1": own})
    assert who.profile("left", gateway) is own
    assert who.profile("right", gateway) is gateway  # a participant with no profile of their own
    assert who.profile("third", gateway) is gateway and who.of("third") is None


@pytest.mark.parametrize("bad", ["P 1", "P/1", "", "Ä1"])
def test_run_and_check_refuse_a_participant_that_is_not_a_pseudonym(bad: str) -> None:
    for argv in (
        ["run", "nausea-relief", "--device", "sim://?speed=max"],
        ["check", "nausea-relief"],
    ):
        code, stderr = app_run([*argv, "--participant", bad])
        assert_one_line(code, stderr, "--participant", "pseudonym")


def test_run_participant_journals_who_wore_the_band_and_queues_nothing(
    isolated_home: Path,
) -> None:
    result = invoke(
        ["run", "nausea-relief", "--device", "sim://?speed=max", "--participant", "P1", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    with Journal() as journal:
        row = journal.session(summary["session_id"])
        assert (row.participant, row.gateway, row.band) == ("P1", None, None)
        assert row.outcome == "completed"
        assert journal.outbox_status().entries == 0  # a single host's sessions are not queued


def test_run_refuses_a_withdrawn_participant_before_touching_a_band(isolated_home: Path) -> None:
    with Journal() as journal:
        begin_row(journal, participant="P1")
        journal.withdraw("P1")
    code, stderr = app_run(
        ["run", "nausea-relief", "--device", "sim://?speed=max", "--participant", "P1"]
    )
    assert_one_line(code, stderr, "--participant", "P1 has withdrawn")
    with Journal() as journal:
        assert journal.sessions() == []


def test_the_journal_refuses_a_session_for_a_withdrawn_participant(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.db") as journal:
        journal.withdraw("P1")
        assert journal.has_withdrawn("P1") and not journal.has_withdrawn("P2")
        with pytest.raises(InputError, match="withdrawn"):
            begin_row(journal, participant="P1")


@pytest.mark.parametrize("doc", ["study.md", "mqtt.md"])
def test_the_bridge_toml_examples_in_the_docs_are_accepted(tmp_path: Path, doc: str) -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / doc).read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```toml\n")[1:]]
    examples = [b for b in blocks if "[participants]" in b]
    assert examples, f"docs/{doc} shows a bridge.toml with participants"
    for i, example in enumerate(examples):
        path = tmp_path / f"bridge-{i}.toml"
        path.write_text(example)
        settings = load_file(path)
        assert settings.participants and all(
            is_participant(who) for who in settings.participants.values()
        )
        assert set(settings.participant_profiles) <= set(settings.participants.values())

"""What the bridge leaves on the broker, against a real Mosquitto: `mqtt-acl > acl` is a file
Mosquitto accepts and enforces, `bridge --forget BAND` clears a band's retained messages,
the start select offers only the band's kind of program, and every Mosquitto configuration
the project writes or documents turns Nagle off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from acudevice.bridge.acl import passwd_commands
from acudevice.bridge.discovery import band_config, offered_programs
from acudevice.bridge.mqtt import Credentials
from acudevice.bridge.participant_protocol import encode
from acudevice.bridge.participants import Participants
from acudevice.bridge.topics import Topics, protocol_topic
from acudevice.cli.main import app
from acudevice.plan.library import ProgramLibrary
from tests.bridge_helpers import GW, running_bridge
from tests.mqtt_broker import Broker
from tests.trial_helpers import protocol

pytestmark = pytest.mark.mqtt

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
USERS = {
    GW: "pw-gw",
    "gw-other": "pw-other",
    "homeassistant": "pw-ha",
    "operator": "pw-op",
    "ingester": "pw-in",
}
BANDS = {"left": "sim://?speed=10&seed=1", "pad": "sim://?speed=10&seed=2&model=vibepad-v1"}


def config_topic(band: str) -> str:
    return f"homeassistant/device/acudevice_{GW}/acudevice_{GW}_{band}/config"


@pytest.fixture
def acl_file() -> Result:
    made = runner.invoke(app, ["mqtt-acl", GW, "gw-other", "--participant", f"{GW}=P1"])
    assert made.exit_code == 0, made.output
    return made


@pytest.fixture
def secure(tmp_path: Path, acl_file: Result) -> Iterator[Broker]:
    """Mosquitto with exactly what `acudevice mqtt-acl GW gw-other > acl` wrote."""
    broker = Broker(tmp_path / "broker", users=USERS, acl=acl_file.stdout)
    broker.start()  # raises if Mosquitto refuses the file
    yield broker
    broker.stop()


async def retained_until(
    broker: Broker, pattern: str, done: Any, *, user: str = "homeassistant", within_s: float = 30
) -> dict[str, str]:
    async with asyncio.timeout(within_s):
        while True:
            found = await broker.retained(pattern, user=user)
            if done(found):
                return found


def test_mqtt_acl_writes_only_the_acl_on_stdout(acl_file: Result) -> None:
    assert "mosquitto_passwd" not in acl_file.stdout
    assert "mosquitto_passwd -c /etc/mosquitto/passwd" in acl_file.stderr
    assert all(
        line == "" or line.startswith(("#", "user ", "topic "))
        for line in acl_file.stdout.splitlines()
    )


async def test_the_acl_file_mosquitto_accepted_keeps_each_gateway_in_its_prefix(
    secure: Broker,
) -> None:
    await secure.pub(f"acudevice/{GW}/status", "mine", retain=True, user=GW)
    await secure.pub("acudevice/gw-other/status", "forged", retain=True, user=GW)
    seen = await secure.retained("acudevice/#", user="homeassistant")
    assert seen == {f"acudevice/{GW}/status": "mine"}


async def test_forget_clears_a_bands_retained_discovery_availability_and_state(
    secure: Broker, tmp_path: Path
) -> None:
    credentials = Credentials(GW, USERS[GW])
    # left's participant is in a trial: the centre delivered their protocol, which only
    # their own gateway may read (mqtt-acl --participant GW=P1)
    mine = protocol_topic("acudevice", "P1")
    await secure.pub(mine, encode(protocol("active", "P1")), retain=True, user="ingester")
    assert list(await secure.retained(mine, user=GW)) == [mine]
    assert await secure.retained(mine, user="gw-other") == {}
    async with running_bridge(
        secure, BANDS, ha_discovery=True, credentials=credentials,
        participants=Participants({"left": "P1"}),
    ):  # fmt: skip
        await retained_until(
            secure,
            "#",
            lambda found: (
                {config_topic("left"), config_topic("pad")} <= set(found)
                and f"acudevice/{GW}/left/state" in found
                and f"acudevice/{GW}/left/schedule" in found
            ),
        )
    # The bridge is gone, its retained messages are not: Home Assistant still shows "left".
    before = await secure.retained("#", user="homeassistant")
    assert config_topic("left") in before and f"acudevice/{GW}/left/availability" in before
    password = tmp_path / "pw"
    password.write_text(USERS[GW] + "\n")
    forgot = await asyncio.to_thread(
        runner.invoke,
        app,
        [
            "bridge",
            "--forget",
            "left",
            "--broker",
            secure.url,
            "--gateway",
            GW,
            "--username",
            GW,
            "--password-file",
            str(password),
        ],
    )
    assert forgot.exit_code == 0, forgot.output
    assert f"cleared {config_topic('left')}" in forgot.stdout
    after = await secure.retained("#", user="homeassistant")  # a subscriber sees none of them
    assert not [t for t in after if t.startswith(f"acudevice/{GW}/left/")], after
    assert config_topic("left") not in after
    assert config_topic("pad") in after and f"acudevice/{GW}/pad/state" in after  # untouched


async def test_a_band_is_offered_only_the_programs_its_actuator_runs(broker: Broker) -> None:
    programs = ProgramLibrary().load_all()
    kinds = {name: program.actuator for name, (_, program) in programs.items()}

    def selects(found: dict[str, str]) -> dict[str, list[str]]:
        options = {}
        for band in BANDS:
            payload = found.get(config_topic(band))
            if payload:
                components = json.loads(payload)["components"].values()
                for component in components:
                    if component["platform"] == "select":
                        options[band] = component["options"]
        return options

    async with running_bridge(broker, BANDS, ha_discovery=True, allow_remote_start=True):
        found = await retained_until(
            broker, "homeassistant/#", lambda f: len(selects(f)) == 2, user=""
        )
    offered = selects(found)
    assert offered["left"] and {kinds[p] for p in offered["left"]} == {"pressure"}
    assert offered["pad"] and {kinds[p] for p in offered["pad"]} == {"vibration"}
    assert "nausea-relief" in offered["left"] and "vibration-nausea" in offered["pad"]


def test_before_a_band_says_what_it_is_no_program_is_offered() -> None:
    kinds = {"nausea-relief": "pressure", "vibration-nausea": "vibration"}
    assert offered_programs(kinds, "pressure") == ["nausea-relief"]
    assert offered_programs(kinds, None) == []
    _, payload = band_config(
        Topics("acudevice", GW), "left", model=None, actuator=None, programs=kinds
    )
    platforms = [c["platform"] for c in json.loads(payload)["components"].values()]
    assert "select" not in platforms


def test_every_mosquitto_config_the_project_writes_or_documents_sets_tcp_nodelay(
    tmp_path: Path,
) -> None:
    """Mosquitto's default leaves Nagle on: a small message then waits ~40 ms for an ack."""
    wanted = "set_tcp_nodelay true"
    assert wanted in Broker(tmp_path / "b").conf.read_text().splitlines()
    assert f"#   {wanted}" in passwd_commands([GW]).splitlines()
    doc = (ROOT / "docs" / "mqtt.md").read_text()
    conf = doc[doc.index("and a `mosquitto.conf` to go with it") :]
    assert wanted in conf[: conf.index("```", conf.index("```") + 3)]
    assert f'"{wanted}"' in (ROOT / "bench" / "mqtt_fleet.py").read_text()

"""Credentials and ACLs, enforced by Mosquitto itself; the bridge says so in one line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from acudevice.bridge.acl import acl_text
from acudevice.bridge.mqtt import BrokerAddress, BrokerError, MqttClient
from tests.bridge_helpers import running_bridge, topic
from tests.mqtt_broker import Broker, Watcher

pytestmark = pytest.mark.mqtt
USERS = {"gw-a": "pw-a", "gw-b": "pw-b", "homeassistant": "pw-ha", "operator": "pw-op"}


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[Broker]:
    # The generated ACL, plus one test-only line so the watcher can probe its subscription.
    probe = "\nuser operator\ntopic write acudevice/_watcher-probe\n"
    b = Broker(tmp_path / "broker", users=USERS, acl=acl_text(["gw-a", "gw-b"]) + probe)
    b.start()
    yield b
    b.stop()


def bridge_cli(broker: Broker, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "acudevice.cli",
            "bridge",
            "--broker",
            broker.url,
            "--device",
            "left=sim://?speed=10",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def password_file(tmp_path: Path, password: str) -> Path:
    path = tmp_path / "mqtt-password"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def test_wrong_credentials_are_refused_by_the_broker_and_the_bridge_exits_in_one_line(
    secure: Broker, tmp_path: Path
) -> None:
    proc = bridge_cli(
        secure,
        tmp_path,
        "--gateway",
        "gw-a",
        "--username",
        "gw-a",
        "--password-file",
        str(password_file(tmp_path, "wrong")),
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "refused" in lines[0], err
    assert "Traceback" not in err


async def test_the_acl_keeps_a_gateway_inside_its_own_prefix(
    secure: Broker, tmp_path: Path
) -> None:
    pw = password_file(tmp_path, "pw-a")
    async with Watcher(secure, "acudevice/#", user="operator") as watch:
        # gw-a's credentials, claiming to be gw-b: every publish under acudevice/gw-b/ is dropped.
        impostor = bridge_cli(
            secure, tmp_path, "--gateway", "gw-b", "--username", "gw-a", "--password-file", str(pw)
        )
        honest = bridge_cli(
            secure, tmp_path, "--gateway", "gw-a", "--username", "gw-a", "--password-file", str(pw)
        )
        try:
            await secure.pub("acudevice/gw-b/left/cmd/stop", "", user="gw-a")  # not allowed either
            # Both started together; by gw-a's third telemetry sample gw-b has long published.
            for _ in range(3):
                await watch.wait_for(
                    lambda s: s.topic == "acudevice/gw-a/left/telemetry", since=len(watch.seen)
                )
        finally:
            for proc in (impostor, honest):
                proc.terminate()
                proc.communicate(timeout=30)
        assert not [s for s in watch.seen if s.topic.startswith("acudevice/gw-b/")]
    # Home Assistant may press stop, and start only a participant's scheduled session; the
    # operator may start any installed program.
    ha = acl_text(["gw-a"]).split("user homeassistant")[1].split("user operator")[0].splitlines()
    assert "topic write acudevice/+/+/cmd/start" not in ha
    assert "topic write acudevice/+/+/cmd/start-scheduled" in ha


async def test_mqtts_with_the_gateways_ca_connects_and_without_it_is_refused(
    tmp_path: Path,
) -> None:
    broker = Broker(tmp_path / "tls", tls=True)
    broker.start()
    try:
        assert broker.ca is not None
        async with (
            running_bridge(broker, {"left": "sim://?speed=10"}, ca_file=broker.ca),
            Watcher(broker, "acudevice/gw1/#") as watch,  # mosquitto_sub over TLS too
        ):
            await watch.wait_for(lambda s: s.topic == topic("left", "state"))
        stranger = MqttClient(BrokerAddress.parse(broker.url), client_id="no-ca", timeout_s=5)
        with pytest.raises(BrokerError, match=r"(?i)certificate"):
            async with stranger.connect():
                pass
    finally:
        broker.stop()

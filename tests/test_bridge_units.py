"""The bridge's pure parts: command parsing, the start guard, topics, backoff, config."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from acudevice.bridge.band import StartRefused
from acudevice.bridge.commands import StartGuard, program_seconds
from acudevice.bridge.config import BridgeFile, build_options, load_file, parse_devices
from acudevice.bridge.mqtt import BrokerAddress
from acudevice.bridge.payloads import (
    MAX_COMMAND_BYTES,
    BadCommand,
    PlainCommand,
    StartCommand,
    parse_command,
)
from acudevice.bridge.topics import Topics, band_id_for
from acudevice.device.backoff import Backoff
from acudevice.errors import InputError
from acudevice.plan.library import ProgramLibrary
from acudevice.safety.profile import HealthProfile

pytestmark = pytest.mark.unit


def start(**fields: object) -> bytes:
    return json.dumps(
        {"request_id": "r", "issued_at": time.time(), "program": "nausea-relief", **fields}
    ).encode()


def test_stop_needs_no_body_but_start_does() -> None:
    assert parse_command("stop", b"") == PlainCommand()
    assert parse_command("estop", b'{"request_id": "a-1"}') == PlainCommand(request_id="a-1")
    with pytest.raises(BadCommand, match="needs a JSON body"):
        parse_command("start", b"")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"x" * (MAX_COMMAND_BYTES + 1), "at most"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe", "not JSON"),
        (start(program="../x"), "program"),
        (start(program="a/b"), "program"),
        (start(program="x.toml"), "program"),
        (start(request_id="has space"), "request_id"),
        (start(extra=1), "extra"),
        (start(issued_at="yesterday"), "issued_at"),
    ],
)
def test_bad_start_bodies_are_refused_naming_the_field(raw: bytes, match: str) -> None:
    with pytest.raises(BadCommand, match=match):
        parse_command("start", raw)


def test_a_refusal_keeps_the_request_id_when_it_can_be_read() -> None:
    with pytest.raises(BadCommand) as caught:
        parse_command("start", start(program="../etc", request_id="keep-me"))
    assert caught.value.request_id == "keep-me"


def guard(allowed: bool = True, remote_max_s: float = 3600) -> StartGuard:
    return StartGuard(allowed, ProgramLibrary(), remote_max_s)


def command(age_s: float, program: str = "nausea-relief") -> StartCommand:
    return StartCommand(
        request_id="g", issued_at=datetime.fromtimestamp(time.time() - age_s, UTC), program=program
    )


def test_the_guard_refuses_when_disabled_stale_from_the_future_or_too_long() -> None:
    now = time.time()
    assert guard().program_for(command(1), now).name == "nausea-relief"
    with pytest.raises(StartRefused, match="disabled"):
        guard(allowed=False).program_for(command(1), now)
    with pytest.raises(StartRefused, match="old"):
        guard().program_for(command(10.5), now)
    with pytest.raises(StartRefused, match="future"):
        guard().program_for(command(-30), now)
    program = ProgramLibrary().get("nausea-relief")
    with pytest.raises(StartRefused, match="limited"):
        guard(remote_max_s=program_seconds(program) - 1).program_for(command(1), now)


def test_command_topics_are_ours_only() -> None:
    topics = Topics("acudevice", "gw1")
    assert topics.parse_command("acudevice/gw1/left/cmd/stop") == ("left", "stop")
    assert topics.parse_command("acudevice/gw1/left/cmd/result") is None
    assert topics.parse_command("acudevice/gw2/left/cmd/stop") is None
    with pytest.raises(InputError, match="--gateway"):
        Topics("acudevice", "gw/+")
    assert band_id_for("sim://?seed=3&speed=10") == "sim-seed-3-speed-10"


def test_backoff_doubles_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(1.0, 60.0, random.Random(1))
    delays = [backoff.delay() for _ in range(9)]
    for i, d in enumerate(delays):
        ceiling = min(2**i, 60.0)
        assert ceiling / 2 <= d <= ceiling
    backoff.reset()
    assert backoff.delay() <= 1.0


def test_config_file_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text(
        'broker = "mqtt://127.0.0.1:1884"\ngateway = "kitchen"\ndevices = ["left=sim://"]\n'
    )
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    options = build_options(
        load_file(path),
        broker=None,
        ca=None,
        username="kitchen",
        password_file=pw,
        gateway=None,
        devices=[],
        prefix=None,
        allow_remote_start=False,
        ha_discovery=False,
        telemetry_hz=None,
        broker_grace_s=None,
        remote_max_s=None,
        sim_fleet=2,
        sim_speed=1,
        profile=HealthProfile(),
    )
    assert options.broker == BrokerAddress("127.0.0.1", 1884, False)
    assert options.gateway == "kitchen" and options.credentials.password == "s3cret"
    assert list(options.bands) == ["left", "sim-0001", "sim-0002"]
    path.write_text('broker = 1883\npassword = "x"\n')
    with pytest.raises(InputError) as caught:
        load_file(path)
    assert {p.field for p in caught.value.problems} == {"broker", "password"}
    with pytest.raises(InputError, match="ID=URL"):
        parse_devices(["sim://?seed=1", "sim://?seed=1"], "--device")
    assert BridgeFile().devices == []
    with pytest.raises(InputError, match=r"--device: 'sim://\?speed=fast'"):
        parse_devices(["sim://?speed=fast"], "--device")  # fails at start, not in a retry loop

"""The commands, across processes: `acudevice-sim serve --ble` owns the virtual radio, and
each `acudevice` command attaches to it over TCP HCI on an OS-picked loopback port."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.wire

BIN = Path(sys.executable).parent
SERVING = re.compile(r"^acudevice-sim: serving \S+ on ble://([0-9A-F:]{17})\?hci=(\S+)$")


@dataclass
class Served:
    address: str
    hci: str
    lines: queue.Queue[str]

    def next_line(self, pattern: str, within_s: float = 20.0) -> re.Match[str]:
        while True:
            line = self.lines.get(timeout=within_s)
            if found := re.search(pattern, line):
                return found


@pytest.fixture
def served() -> Iterator[Served]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "serve", "--ble", "--speed", "max", "--seed", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    try:
        first = SERVING.match(lines.get(timeout=30))
        assert first, "the first line names the band and the HCI transport"
        assert re.fullmatch(r"tcp-client:127\.0\.0\.1:\d+", first.group(2))
        yield Served(first.group(1), first.group(2), lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=15) == 0, "SIGTERM: vent, then exit 0"
        finally:
            if proc.poll() is None:
                proc.kill()


def acudevice(
    *args: str, env_hci: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="160")
    if env_hci:
        env["ACUDEVICE_BLE_HCI"] = env_hci
    return subprocess.run(
        [str(BIN / "acudevice"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_scan_pair_run_rename_and_forget_across_processes(
    served: Served, isolated_home: Path
) -> None:
    scanned = acudevice("scan", "--timeout", "0.5", "--hci", served.hci)
    assert scanned.returncode == 0, scanned.stderr
    assert served.address in scanned.stdout and "Acu-0005" in scanned.stdout
    assert "100 %" in scanned.stdout and "no" in scanned.stdout

    pairing = subprocess.Popen(
        [
            str(BIN / "acudevice"),
            "pair",
            served.address,
            "--alias",
            "left-wrist",
            "--hci",
            served.hci,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    passkey = served.next_line(r"passkey (\d{6})").group(1)  # the band's display
    out, err = pairing.communicate(passkey + "\n", timeout=60)
    assert pairing.returncode == 0, err
    assert "paired left-wrist: wristband-p1 serial SIM-00000005" in out

    listed = acudevice("devices")
    assert "left-wrist" in listed.stdout and served.address in listed.stdout

    ran = acudevice("run", "nausea-relief", "--device", "left-wrist", "--json", env_hci=served.hci)
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout.strip().splitlines()[-1])
    assert (summary["outcome"], summary["repeats_done"]) == ("completed", 4)

    assert acudevice("devices", "rename", "left-wrist", "right-wrist").returncode == 0
    forgot = acudevice("devices", "forget", "right-wrist")
    assert forgot.returncode == 0 and "forgot right-wrist" in forgot.stdout
    bonds = json.loads((isolated_home / "data" / "ble" / "bonds.json").read_text())
    assert all(served.address not in peers for peers in bonds.values())
    assert "No paired bands" in acudevice("devices").stdout

    refused = acudevice("run", "nausea-relief", "--device", served.address, env_hci=served.hci)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"acudevice pair {served.address}" in refused.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pair", "nonsense", "--passkey", "1"), "not a Bluetooth address"),
        (("pair", "C0:00:00:00:00:01", "--passkey", "1234567"), "six digits"),
        (
            ("pair", "C0:00:00:00:00:01", "--alias", "bad alias!", "--passkey", "1"),
            "not a usable alias",
        ),
        (("devices", "forget", "nope"), "no paired band called 'nope'"),
        (("devices", "rename", "nope", "x"), "no paired band called 'nope'"),
        (("scan", "--timeout", "0"), "got 0 s; must be more than 0 s and at most 120 s"),
        (("run", "nausea-relief", "--device", "left-wrist"), "no paired band's alias"),
    ],
)
def test_bad_input_is_one_clear_message_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = acudevice(*args, timeout=30)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_no_radio_at_the_given_hci_is_a_message_with_advice() -> None:
    with socket.socket() as probe:  # an OS-picked loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = acudevice("scan", "--timeout", "0.1", "--hci", f"tcp-client:127.0.0.1:{port}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "acudevice-sim serve --ble" in " ".join(result.stderr.split())

"""Devices acudevice must refuse: a protocol version it does not speak, a model it does not know.

A small fake firmware on a loopback socket (real TCP, real framing) plays the device, and
records what the host sent, so the tests can check the band was left stopped.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from acudevice.protocol import (
    Ack,
    Capabilities,
    Deframer,
    HelloResponse,
    InfoResponse,
    Opcode,
    Response,
    Result,
    decode,
    encode,
    frame,
)

pytestmark = pytest.mark.wire

Answer = Callable[[int], Response]


@asynccontextmanager
async def fake_firmware(answer: Answer) -> AsyncIterator[tuple[str, list[int]]]:
    received: list[int] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        deframer = Deframer()
        while data := await reader.read(256):
            for payload in deframer.feed(data):
                envelope = decode(payload)
                received.append(envelope.opcode)
                writer.write(frame(encode(answer(envelope.opcode), envelope.seq)))
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"tcp://127.0.0.1:{port}", received
    finally:
        server.close()


async def run_cli(home: Path, url: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acudevice.cli",
        "run",
        "nausea-relief",
        "--device",
        url,
        env={**os.environ, "ACUDEVICE_HOME": str(home)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, err.decode()


def ack(opcode: int) -> Response:
    return Ack(opcode=opcode, result=Result.OK)


async def test_firmware_speaking_another_version_is_refused_and_left_stopped(
    isolated_home: Path,
) -> None:
    def answer(opcode: int) -> Response:
        if opcode == Opcode.HELLO:
            return HelloResponse(
                result=Result.VERSION_UNSUPPORTED,
                version=0,
                device_min_version=2,
                device_max_version=3,
            )
        return ack(opcode)

    async with fake_firmware(answer) as (url, received):
        code, err = await run_cli(isolated_home, url)
    assert code == 2 and "protocol versions 2..3" in err and "Traceback" not in err
    assert Opcode.ESTOP in received and Opcode.START not in received


async def test_band_reporting_an_unknown_model_is_refused_and_left_stopped(
    isolated_home: Path,
) -> None:
    def answer(opcode: int) -> Response:
        if opcode == Opcode.HELLO:
            return HelloResponse(
                result=Result.OK, version=1, device_min_version=1, device_max_version=1
            )
        if opcode == Opcode.INFO:
            return InfoResponse(
                result=Result.OK,
                protocol_version=1,
                capabilities=Capabilities.PRESSURE,
                hardware_max_level=40_000,
                battery_percent=90,
                time_scale=1,
                model="mystery-band",
                firmware_version="0.1",
                serial="X1",
                ramp_limit_per_s=2000,
            )
        return ack(opcode)

    async with fake_firmware(answer) as (url, received):
        code, err = await run_cli(isolated_home, url)
    assert code == 2 and "'mystery-band'" in err and "profiles/devices" in err
    assert Opcode.ESTOP in received and Opcode.LOAD_BEGIN not in received

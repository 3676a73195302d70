"""The codec and serial framing on realistic traffic; prints figures, asserts nothing.

    .venv/bin/python bench/codec.py [seconds per figure]

Real traffic is about 99 % telemetry (10 samples a second while a band works, against a
heartbeat a second and a few events a minute), so the mix here is 990 telemetry samples
(varying levels, states and flags), 8 heartbeat acks and 2 events per 1,000 messages.
Device side: encode + frame; host side: deframe + decode. Baseline, in the same run: the
same bytes through `bytes` copying alone (join + split on the delimiter), the floor any
framing must pay in Python.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable

from acudevice.protocol import (
    Ack,
    Deframer,
    FirmwareState,
    Message,
    Opcode,
    Reason,
    Result,
    SegmentStarted,
    StateChanged,
    Telemetry,
    TelemetryFlags,
    decode,
    encode,
    frame,
)


def realistic_mix(seed: int = 0) -> list[tuple[int, Message]]:
    rng = random.Random(seed)
    out: list[tuple[int, Message]] = []
    for i in range(990):
        out.append(
            (
                i,
                Telemetry(
                    t_ms=100 * i,
                    measured_level=rng.randrange(0, 20_000),
                    target_level=rng.randrange(0, 20_000),
                    state=rng.choice([FirmwareState.RUNNING, FirmwareState.VENTING]),
                    segment_index=rng.randrange(0, 12),
                    battery_percent=rng.randrange(20, 100),
                    flags=rng.choice([TelemetryFlags(0), TelemetryFlags.PUMP_ON]),
                ),
            )
        )
    out += [(i, Ack(opcode=Opcode.HEARTBEAT, result=Result.OK)) for i in range(8)]
    out.append((1, SegmentStarted(index=3, elapsed_ms=90_000)))
    out.append(
        (
            2,
            StateChanged(
                old=FirmwareState.RUNNING, new=FirmwareState.VENTING, reason=Reason.SCHEDULE_DONE
            ),
        )
    )
    rng.shuffle(out)
    return out


MIX = realistic_mix()
PAYLOADS = [encode(message, seq) for seq, message in MIX]
STREAM = b"".join(frame(p) for p in PAYLOADS)


def rate(step: Callable[[], int], seconds: float) -> float:
    """Messages per second, running `step` (which returns how many it did) for `seconds`."""
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += step()
    return done / elapsed


def device_side() -> int:
    b"".join(frame(encode(message, seq)) for seq, message in MIX)
    return len(MIX)


def host_side() -> int:
    for payload in Deframer().feed(STREAM):
        decode(payload)
    return len(MIX)


def copy_floor() -> int:
    b"\x00".join(PAYLOADS).split(b"\x00")
    return len(MIX)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    print(f"mix: {len(MIX)} messages, 99 % telemetry, {len(STREAM)} framed bytes per pass")
    floor = rate(copy_floor, seconds)
    print(f"{'path':<34} {'messages/s':>12} {'x slower than copying':>22}")
    print(f"{'baseline: join + split bytes':<34} {floor:>12,.0f} {1.0:>22.1f}")
    for name, step in (
        ("device: encode + frame", device_side),
        ("host: deframe + decode", host_side),
    ):
        r = rate(step, seconds)
        print(f"{name:<34} {r:>12,.0f} {floor / r:>22.1f}")
    print("a band at real rates sends ~11 messages/s: one core decodes for thousands of bands")


if __name__ == "__main__":
    main()

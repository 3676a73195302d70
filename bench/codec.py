"""The codec and serial framing on realistic traffic; prints figures, asserts nothing.

    .venv/bin/python bench/codec.py [seconds per figure]

Real traffic is about 99 % telemetry (10 samples a second while a band works, against a
heartbeat a second and a few events a minute), so the mix here is 990 telemetry samples
(varying levels, states and flags), 8 heartbeat acks and 2 events per 1,000 messages.
Device side: encode + frame; host side: deframe + decode. Baseline, in the same run: the
same bytes through `bytes` copying alone (join + split on the delimiter), the floor any
framing must pay in Python.

Then the same 990 samples, telemetry alone, per SAMPLE: one sample per payload (as today,
and as `encode` builds it, and as the simulator's row encoder builds it) against
TELEMETRY_BATCH payloads of 8 samples, so the ratio batching buys shows.
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
    TelemetryRow,
    decode,
    encode,
    encode_telemetry_rows,
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


SAMPLES = sorted((m for _, m in MIX if isinstance(m, Telemetry)), key=lambda t: t.t_ms)
ROWS: list[TelemetryRow] = [
    (
        t.t_ms,
        t.measured_level,
        t.target_level,
        int(t.state),
        t.segment_index,
        t.battery_percent,
        int(t.flags),
    )
    for t in SAMPLES
]
GROUPS = [ROWS[i : i + 8] for i in range(0, len(ROWS), 8)]
SINGLE_STREAM = b"".join(frame(encode_telemetry_rows([row], i)) for i, row in enumerate(ROWS))
BATCH_STREAM = b"".join(frame(encode_telemetry_rows(g, i)) for i, g in enumerate(GROUPS))


def encode_single_models() -> int:
    b"".join(frame(encode(sample, i)) for i, sample in enumerate(SAMPLES))
    return len(SAMPLES)


def encode_single_rows() -> int:
    b"".join(frame(encode_telemetry_rows([row], i)) for i, row in enumerate(ROWS))
    return len(ROWS)


def encode_batches() -> int:
    b"".join(frame(encode_telemetry_rows(group, i)) for i, group in enumerate(GROUPS))
    return len(ROWS)


def decode_singles() -> int:
    for payload in Deframer().feed(SINGLE_STREAM):
        decode(payload)
    return len(ROWS)


def decode_batches() -> int:
    for payload in Deframer().feed(BATCH_STREAM):
        decode(payload)
    return len(ROWS)


def telemetry_table(seconds: float) -> None:
    print(f"\ntelemetry alone: {len(ROWS)} samples; batches of 8 ({len(GROUPS)} payloads)")
    print(f"{'path (framed)':<44} {'samples/s':>12} {'x one per payload':>18}")
    for title, single, batched in (
        ("device: encode + frame", encode_single_rows, encode_batches),
        ("host: deframe + decode", decode_singles, decode_batches),
    ):
        one = rate(single, seconds)
        many = rate(batched, seconds)
        print(f"{title + ', one per payload':<44} {one:>12,.0f} {1.0:>18.1f}")
        print(f"{title + ', 8 per TELEMETRY_BATCH':<44} {many:>12,.0f} {many / one:>18.1f}")
    models = rate(encode_single_models, seconds)
    print(f"{'device: encode(Telemetry) + frame (pydantic)':<44} {models:>12,.0f}")


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
    telemetry_table(seconds)


if __name__ == "__main__":
    main()

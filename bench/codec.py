"""How fast the pure codec and the serial framing run; prints figures, asserts nothing.

.venv/bin/python bench/codec.py [seconds per figure]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from acudevice.protocol import Deframer, decode, encode, frame
from acudevice.protocol.vectors import SAMPLES

MESSAGES = [(seq, message) for group in SAMPLES.values() for _, seq, message in group]


def rate(step: Callable[[], int], seconds: float) -> float:
    """Items per second, running `step` (which returns how many items it did) for `seconds`."""
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += step()
    return done / elapsed


def encode_decode() -> int:
    for seq, message in MESSAGES:
        decode(encode(message, seq))
    return len(MESSAGES)


def encode_only() -> int:
    for seq, message in MESSAGES:
        encode(message, seq)
    return len(MESSAGES)


PAYLOADS = [encode(message, seq) for seq, message in MESSAGES]
STREAM = b"".join(frame(p) for p in PAYLOADS)


def decode_only() -> int:
    for payload in PAYLOADS:
        decode(payload)
    return len(PAYLOADS)


def frame_deframe() -> int:
    deframer = Deframer()
    got = deframer.feed(b"".join(frame(p) for p in PAYLOADS))
    return len(got)


def deframe_only() -> int:
    return len(Deframer().feed(STREAM))


def full_path() -> int:
    deframer = Deframer()
    wire = b"".join(frame(encode(message, seq)) for seq, message in MESSAGES)
    for payload in deframer.feed(wire):
        decode(payload)
    return len(MESSAGES)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    print(f"{len(MESSAGES)} sample messages (every type), {len(STREAM)} framed bytes per pass")
    for name, step in [
        ("encode", encode_only),
        ("decode", decode_only),
        ("encode + decode", encode_decode),
        ("frame + deframe", frame_deframe),
        ("deframe only", deframe_only),
        ("encode + frame + deframe + decode", full_path),
    ]:
        print(f"{name:>36}: {rate(step, seconds):>10,.0f} messages/s")


if __name__ == "__main__":
    main()

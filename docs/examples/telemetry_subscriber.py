"""Subscribe to gateways' batched telemetry, decode each batch and notice lost batches.

    python docs/examples/telemetry_subscriber.py --host 127.0.0.1 --gateway kitchen
    python docs/examples/telemetry_subscriber.py --gateway '+'    # every gateway

Each line it prints is one sample: gateway, band, when the gateway received it, the band's own
clock, measured and target level, state. A warning goes to stderr when a batch is missing
(its `seq` jumped) and when a gateway restarted (a new `run`). The format is documented in
docs/mqtt.md, "Batched telemetry". Needs only aiomqtt (installed with acudevice).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sample:
    gateway: str
    band: str
    received: float
    """Unix seconds: when the gateway received the sample (one time base for all bands)."""
    t_ms: int
    """The band's own clock, ms (each band's clock is its own)."""
    measured: float
    target: float
    state: str
    segment: int
    battery_percent: int


def decode(payload: bytes | str) -> tuple[dict[str, Any], list[Sample]]:
    """One batch: its header and its samples, in the order the gateway received them."""
    batch = json.loads(payload)
    if not isinstance(batch, dict) or batch.get("v") != 1:
        raise ValueError("not a version 1 telemetry batch")
    fields = batch["fields"]
    samples = []
    for band, rows in batch["bands"].items():
        for row in rows:
            value = dict(zip(fields, row, strict=True))
            samples.append(
                Sample(
                    gateway=batch["gateway"],
                    band=band,
                    received=batch["t0"] + value["rx_ms"] / 1000,
                    t_ms=value["t_ms"],
                    measured=value["measured"],
                    target=value["target"],
                    state=value["state"],
                    segment=value["segment"],
                    battery_percent=value["battery_percent"],
                )
            )
    samples.sort(key=lambda s: s.received)
    return batch, samples


class GapDetector:
    """Within one `run` of a gateway, `seq` goes up by exactly one from batch to batch."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[str, int]] = {}
        self.missed = 0
        self.restarts = 0

    def check(self, batch: dict[str, Any]) -> int:
        """How many batches went missing just before this one (0 when none)."""
        gateway, run, seq = batch["gateway"], batch["run"], batch["seq"]
        last = self._last.get(gateway)
        self._last[gateway] = (run, seq)
        if last is None:
            return 0
        if last[0] != run:
            self.restarts += 1
            return 0
        missed = max(0, seq - last[1] - 1)
        self.missed += missed
        return missed


async def main() -> None:
    import aiomqtt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default="acudevice")
    parser.add_argument("--gateway", default="+")
    args = parser.parse_args()
    gaps = GapDetector()
    async with aiomqtt.Client(args.host, args.port) as client:
        await client.subscribe(f"{args.prefix}/{args.gateway}/telemetry")
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            try:
                batch, samples = decode(message.payload)
            except (ValueError, KeyError, TypeError) as exc:
                print(f"{message.topic}: not a batch: {exc}", file=sys.stderr)
                continue
            missed = gaps.check(batch)
            if missed:
                print(f"{batch['gateway']}: {missed} batch(es) missed", file=sys.stderr)
            if batch["dropped"]:
                print(
                    f"{batch['gateway']}: dropped {batch['dropped']} samples so far",
                    file=sys.stderr,
                )
            for s in samples:
                print(
                    f"{s.gateway} {s.band} {s.received:.3f} {s.t_ms} "
                    f"{s.measured:g}/{s.target:g} {s.state}"
                )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())

"""HEARTBEAT request -> response latency over a pty and loopback TCP (median, p99).

The simulator runs in this process behind a real pseudo-terminal / socket. The ratio
divides the latency by the wire time of the request and response frames at 115200 baud
8N1: what a real UART link would need for the bytes alone. A pty has no baud rate, so a
ratio under 1 means the host and simulator add less than the wire would. Prints only.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from acudevice.device import Device
from acudevice.protocol import Ack, Heartbeat, Opcode, Result, encode, frame
from acudevice.transport import open_transport
from simulator.options import SimOptions
from simulator.server import PtyServer, TcpServer
from simulator.simulation import Simulation

ROUNDS = 500
BAUD = 115_200


async def latencies(server_cls: type[PtyServer] | type[TcpServer], query: str = "") -> list[float]:
    sim = Simulation(SimOptions(speed=1))
    server = server_cls(sim)
    where = await server.start()
    url = f"serial://{where}" if isinstance(server, PtyServer) else f"tcp://127.0.0.1:{where}"
    url += query
    out = []
    async with Device(open_transport(url), heartbeat_interval_s=None) as device:
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            await device.heartbeat()
            out.append((time.perf_counter() - t0) * 1000)
    await server.close()
    await sim.stop()
    return sorted(out)


async def main() -> None:
    wire_bytes = len(frame(encode(Heartbeat(), 1))) + len(
        frame(encode(Ack(opcode=Opcode.HEARTBEAT, result=Result.OK), 1))
    )
    wire_ms = wire_bytes * 10 / BAUD * 1000
    print(f"HEARTBEAT + Ack: {wire_bytes} bytes on the wire = {wire_ms:.3f} ms at {BAUD} baud 8N1")
    print(f"{'link':<18} {'median ms':>10} {'p99 ms':>8} {'median / wire time':>20}")
    links = (
        ("pty (2 ms pacing)", PtyServer, ""),
        ("pty, gap_ms=0", PtyServer, "?gap_ms=0"),
        ("tcp", TcpServer, ""),
    )
    for name, cls, query in links:
        values = await latencies(cls, query)
        median = statistics.median(values)
        p99 = values[int(len(values) * 0.99)]
        print(f"{name:<18} {median:>10.3f} {p99:>8.3f} {median / wire_ms:>20.2f}")


if __name__ == "__main__":
    asyncio.run(main())

"""The firmware's telemetry output: a sample per period, sent alone or held and batched.

With `batch_ms` 0 (the default after every HELLO and on a new connection) each sample is
one TELEMETRY SAMPLE payload. Above it, samples are held and sent as one TELEMETRY_BATCH
when eight are held, when the oldest is `batch_ms` old, and before any event (the firmware
calls `flush` first), so every sample taken before an event arrives before it.
"""

from __future__ import annotations

from acudevice.protocol import (
    MAX_BATCH_SAMPLES,
    TelemetryFlags,
    TelemetryRow,
    encode_telemetry_rows,
)
from simulator.plant import Actuation

FLAG_SETS = {bits: TelemetryFlags(bits) for bits in range(0x40)}
"""Every combination of telemetry flags, built once: `flags` looks its answer up."""
_PUMP_ON, _MOTOR_ON = int(TelemetryFlags.PUMP_ON), int(TelemetryFlags.MOTOR_ON)
_VALVE_OPEN, _LOW_BATTERY = int(TelemetryFlags.VALVE_OPEN), int(TelemetryFlags.LOW_BATTERY)
_STREAMING = int(TelemetryFlags.STREAMING)


def flags(act: Actuation, *, pressure: bool, low_battery: bool, streaming: bool) -> TelemetryFlags:
    """The flag bits a sample carries for what the firmware drives now."""
    bits = 0
    if act.power and act.drive > 0.0:
        bits = _PUMP_ON if pressure else _MOTOR_ON
    if pressure and (act.vent or act.release > 0.0):
        bits |= _VALVE_OPEN
    if low_battery:
        bits |= _LOW_BATTERY
    if streaming:
        bits |= _STREAMING
    return FLAG_SETS[bits]


class TelemetryOut:
    """Sequence numbers, the next sample's due time, and the held batch."""

    def __init__(self) -> None:
        self.batch_ms = 0
        self.due_ms = 0
        self._seq = 0
        self._held: list[TelemetryRow] = []
        self._held_since_ms = 0

    def add(self, row: TelemetryRow, now_ms: int, outbox: list[bytes]) -> None:
        """A new sample: sent at once, or held (and what is due goes out)."""
        if not self.batch_ms:
            self._send([row], outbox)
            return
        held = self._held
        if held and held[-1][0] == row[0]:  # t_ms must rise within a batch
            self.flush(outbox)
        if not self._held:
            self._held_since_ms = now_ms
        self._held.append(row)
        self.tick(now_ms, outbox)

    def tick(self, now_ms: int, outbox: list[bytes]) -> None:
        """Device time passed: a full or old enough batch goes out."""
        held = self._held
        if held and (
            len(held) >= MAX_BATCH_SAMPLES or now_ms - self._held_since_ms >= self.batch_ms
        ):
            self.flush(outbox)

    def flush(self, outbox: list[bytes]) -> None:
        """Whatever is held, now (a lone sample goes as a plain SAMPLE)."""
        if self._held:
            self._send(self._held, outbox)
            self._held = []

    def set_batch(self, batch_ms: int, outbox: list[bytes]) -> None:
        """SET_TELEMETRY: what is held goes out when batching stops."""
        self.batch_ms = batch_ms
        if not batch_ms:
            self.flush(outbox)

    def reset(self) -> None:
        """A new connection: samples held for the host that left go with it."""
        self._held = []
        self.batch_ms = 0

    def _send(self, rows: list[TelemetryRow], outbox: list[bytes]) -> None:
        outbox.append(encode_telemetry_rows(rows, self._seq))
        self._seq = (self._seq + 1) & 0xFFFF

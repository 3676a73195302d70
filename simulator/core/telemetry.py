"""The firmware's telemetry output: a sample per period, sent alone or held and batched.

With `batch_ms` 0 (the default after every HELLO and on a new connection) each sample is
one TELEMETRY SAMPLE payload. Above it, samples are held and sent as one TELEMETRY_BATCH
when eight are held, when the oldest is `batch_ms` old, and before any event (the firmware
calls `flush` first), so every sample taken before an event arrives before it.
"""

from __future__ import annotations

from typing import Final

from acudevice.protocol import (
    MAX_BATCH_SAMPLES,
    RECORD,
    TelemetryFlags,
    TelemetryRow,
    encode_telemetry_records,
    encode_telemetry_rows,
)
from simulator.core.plant import Actuation

_PUMP_ON: Final = int(TelemetryFlags.PUMP_ON)
_MOTOR_ON: Final = int(TelemetryFlags.MOTOR_ON)
_VALVE_OPEN: Final = int(TelemetryFlags.VALVE_OPEN)
_LOW_BATTERY: Final = int(TelemetryFlags.LOW_BATTERY)
_STREAMING: Final = int(TelemetryFlags.STREAMING)
_MAX_HELD: Final = MAX_BATCH_SAMPLES
_pack_record: Final = RECORD.pack


def flag_bits(act: Actuation, *, pressure: bool, low_battery: bool, streaming: bool) -> int:
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
    return bits


class TelemetryOut:
    """Sequence numbers, the next sample's due time, and the held batch."""

    def __init__(self) -> None:
        self.batch_ms = 0
        self.due_ms = 0
        self._seq = 0
        self._held: list[bytes] = []
        """Held samples, each packed as it was taken (the batch only joins them)."""
        self._held_since_ms = 0
        self._held_t_ms = -1

    def add(self, row: TelemetryRow, now_ms: int, outbox: list[bytes]) -> None:
        """A new sample: sent at once, or held (and what is due goes out)."""
        if not self.batch_ms:
            outbox.append(encode_telemetry_rows([row], self._seq))
            self._seq = (self._seq + 1) & 0xFFFF
            return
        if self._held and self._held_t_ms == row[0]:  # t_ms must rise within a batch
            self.flush(outbox)
        if not self._held:
            self._held_since_ms = now_ms
        self._held.append(_pack_record(*row))
        self._held_t_ms = row[0]
        self.tick(now_ms, outbox)

    def tick(self, now_ms: int, outbox: list[bytes]) -> None:
        """Device time passed: a full or old enough batch goes out."""
        held = self._held
        if held and (len(held) >= _MAX_HELD or now_ms - self._held_since_ms >= self.batch_ms):
            self.flush(outbox)

    def flush(self, outbox: list[bytes]) -> None:
        """Whatever is held, now (a lone sample goes as a plain SAMPLE)."""
        if self._held:
            outbox.append(encode_telemetry_records(self._held, self._seq))
            self._seq = (self._seq + 1) & 0xFFFF
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

"""Batched telemetry: every band's samples of the last window in one message per gateway.

One MQTT message per sample per band is what costs a gateway its CPU and a subscriber its
socket (1,000 bands at 10 Hz is 10,000 messages a second); one message per window (100 ms by
default) carries the same samples for a few per cent of the cost. The format (docs/mqtt.md,
"Batched telemetry"; `BatchPayload` is its schema):

    {"v": 1, "gateway": "kitchen", "run": "5f0c2a9e", "seq": 4211,
     "t0": 1795000000.1, "sent": 1795000000.2, "samples": 2, "dropped": 0,
     "fields": ["rx_ms", "t_ms", "measured", "target", "state", "segment", "battery_percent"],
     "bands": {"left": [[12, 41200, 11.96, 12.0, "RUNNING", 3, 97]], ...}}

`seq` counts this gateway's batches from 0 for each `run` (a random id per start), so a
subscriber that sees `seq` jump within one `run` knows it missed batches. `rx_ms` is when the
gateway received the sample, in ms after `t0` (the window's start): one time base for every
band, whose own `t_ms` clocks all differ.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from acudevice.protocol import FirmwareState
from acudevice.protocol.messages import Telemetry

FORMAT_VERSION = 1
WINDOW_S = 0.1
FIELDS = ("rx_ms", "t_ms", "measured", "target", "state", "segment", "battery_percent")
LEVEL_SCALE = 1000.0  # Pa -> kPa, permille -> fraction (as the per-band telemetry)
_STATE_NAMES = {int(state): state.name for state in FirmwareState}

Row = tuple[int, int, float, float, str, int, int]


# docs/telemetry-batch.schema.json is this model's JSON Schema (`schema_json`; a test keeps
# the two equal), and docs/mqtt.md describes it.
class BatchPayload(BaseModel):
    """Every band's samples of one window, from one gateway (`<prefix>/<gateway>/telemetry`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="acudevice telemetry batch")

    v: Literal[1] = Field(description="format version")
    gateway: str = Field(description="the gateway id")
    run: str = Field(description="random id of this gateway run; seq restarts at 0 with it")
    seq: Annotated[int, Field(ge=0, description="batch number within the run, no gaps")]
    t0: float = Field(description="window start, Unix seconds (the gateway's clock)")
    sent: float = Field(description="when the batch was made, Unix seconds")
    samples: Annotated[int, Field(ge=0, description="rows in bands, all bands together")]
    dropped: Annotated[
        int, Field(ge=0, description="samples this gateway run dropped so far (full buffer)")
    ]
    fields: list[str] = Field(description="the meaning of each row's columns, in order")
    bands: dict[str, list[Row]] = Field(
        description="band id -> rows [rx_ms, t_ms, measured, target, state, segment, "
        "battery_percent], oldest first; rx_ms: ms after t0 the gateway received the sample; "
        "t_ms: the band's own clock; measured and target: kPa (pressure) or 0-1 (vibration)"
    )


@dataclass(frozen=True)
class Batch:
    payload: str
    samples: int
    seq: int


class TelemetryBatcher:
    """Collects samples as they arrive (`add`, O(1)); `flush` makes one message of them."""

    def __init__(
        self, gateway: str, *, run: str | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.gateway = gateway
        self.run = run or secrets.token_hex(4)
        self._clock = clock
        self._seq = 0
        self._t0 = clock()
        self._bands: dict[str, list[Row]] = {}
        self._samples = 0

    def add(self, band: str, sample: Telemetry) -> None:
        """One sample of one band, as the gateway receives it."""
        rows = self._bands.get(band)
        if rows is None:
            rows = self._bands[band] = []
        rows.append(
            (
                round((self._clock() - self._t0) * 1000),
                sample.t_ms,
                sample.measured_level / LEVEL_SCALE,
                sample.target_level / LEVEL_SCALE,
                _STATE_NAMES.get(int(sample.state), str(int(sample.state))),
                sample.segment_index,
                sample.battery_percent,
            )
        )
        self._samples += 1

    def flush(self, *, dropped: int = 0) -> Batch | None:
        """The window's samples as one message (None when there were none); a new window."""
        now = self._clock()
        if not self._samples:
            self._t0 = now
            return None
        body = {
            "v": FORMAT_VERSION,
            "gateway": self.gateway,
            "run": self.run,
            "seq": self._seq,
            "t0": round(self._t0, 3),
            "sent": round(now, 3),
            "samples": self._samples,
            "dropped": dropped,
            "fields": FIELDS,
            "bands": self._bands,
        }
        batch = Batch(json.dumps(body, separators=(",", ":")), self._samples, self._seq)
        self._seq += 1
        self._t0 = now
        self._bands = {}
        self._samples = 0
        return batch


async def publish_batches(
    batcher: TelemetryBatcher,
    send: Callable[[Batch], None],
    window_s: float = WINDOW_S,
    dropped: Callable[[], int] = lambda: 0,
) -> None:
    """Flush `batcher` every `window_s` and `send` each batch, until cancelled.

    Due times advance by the window; after a stall the next window starts from now, so a
    late loop sends one larger batch, never a burst of small ones."""
    loop = asyncio.get_running_loop()
    due = loop.time() + window_s
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        due = max(due + window_s, loop.time())
        batch = batcher.flush(dropped=dropped())
        if batch is not None:
            send(batch)


def schema_json() -> str:
    """The JSON Schema of a batch, as docs/telemetry-batch.schema.json holds it."""
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    schema.update(BatchPayload.model_json_schema())
    return json.dumps(schema, indent=2) + "\n"

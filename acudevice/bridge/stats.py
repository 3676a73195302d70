"""The gateway's own counters: what it dropped and refused, published and logged.

`<prefix>/<gateway>/stats` (QoS 0, retained) every 10 s; a warning in the log when
telemetry was dropped or commands were refused since the last report.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from acudevice.bridge.admission import GateCounters
from acudevice.bridge.outgoing import Counters

log = logging.getLogger("acudevice.bridge")

PERIOD_S = 10.0


class StatsPayload(BaseModel):
    """Totals since the gateway started (`run` is the telemetry batches' run id)."""

    model_config = ConfigDict(frozen=True)

    run: str
    telemetry_dropped_messages: int
    telemetry_dropped_samples: int
    telemetry_offline_messages: int
    urgent_lost: int
    commands_admitted: int
    commands_bypassed: int
    commands_refused: int
    commands_refusals_answered: int
    commands_dropped_incoming: int
    """Commands the full incoming queue dropped (the oldest ordinary ones; never a stop)."""
    ts: float


def snapshot(run: str, out: Counters, gate: GateCounters, incoming_dropped: int) -> StatsPayload:
    return StatsPayload(
        run=run,
        telemetry_dropped_messages=out.dropped_messages,
        telemetry_dropped_samples=out.dropped_samples,
        telemetry_offline_messages=out.offline_messages,
        urgent_lost=out.urgent_lost,
        commands_admitted=gate.admitted,
        commands_bypassed=gate.bypassed,
        commands_refused=gate.refused,
        commands_refusals_answered=gate.refusals_answered,
        commands_dropped_incoming=incoming_dropped,
        ts=time.time(),
    )


async def report_stats(
    collect: Callable[[], StatsPayload],
    send: Callable[[str], None],
    period_s: float = PERIOD_S,
) -> None:
    """Every `period_s`: publish the counters, and warn about what changed; until cancelled."""
    last = collect()
    while True:
        await asyncio.sleep(period_s)
        now = collect()
        send(now.model_dump_json())
        dropped = now.telemetry_dropped_samples - last.telemetry_dropped_samples
        refused = (
            now.commands_refused
            - last.commands_refused
            + now.commands_dropped_incoming
            - last.commands_dropped_incoming
        )
        lost = now.urgent_lost - last.urgent_lost
        if dropped:
            log.warning(
                "dropped %d telemetry samples in %g s: the broker or the network is too slow",
                dropped,
                period_s,
            )
        if refused:
            log.warning("refused %d commands in %g s: over the rate limits", refused, period_s)
        if lost:
            log.warning("lost %d replies, states or events in %g s", lost, period_s)
        last = now

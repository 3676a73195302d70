"""The documented range of every number a bridge takes, as a flag or in bridge.toml.

Light on purpose (no pydantic, no aiomqtt): `acudevice bridge --help` prints these ranges.
"""

from __future__ import annotations

from acudevice.numbers import Span

TELEMETRY_HZ = Span(0, 10, "Hz", low_open=True)
"""Telemetry per band; a band sends at most 10 samples a second."""
BROKER_GRACE_S = Span(0, 3600, "s", low_open=True)
"""How long a remotely started session outlives the broker."""
REMOTE_MAX_S = Span(0, 24 * 3600, "s", low_open=True)
"""The longest remotely started program (and remote session)."""
BACKOFF_INITIAL_S = Span(0.1, 600, "s")
BACKOFF_MAX_S = Span(1, 3600, "s")
"""Reconnecting to the broker: the first wait, doubling up to the longest."""
SIM_FLEET = Span(0, 5000)
SIM_SPEED = Span(1, 0xFFFF)
"""Device seconds per wall second of the simulated bands (INFO's time_scale is a u16)."""
BATCH_WINDOW_MS = Span(0, 10_000, "ms")
"""Telemetry batches: every band's samples of this window in one message; 0: no batches,
otherwise at least MIN_BATCH_WINDOW_MS."""
MIN_BATCH_WINDOW_MS = 10

"""The cuts of the link campaign: which band, which failure, when, and for how long.

Planned from the seed alone (the same seed gives the same cuts), made from the band's side
(`simulator.link_bands`) the ways links really fail; `simulator.link_campaign` judges them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from simulator.link_bands import BleServedBand, PtyBand, ServedBand, TcpBand

Transport = Literal["ble", "pty", "tcp"]
KINDS: dict[str, tuple[str, ...]] = {
    "ble": ("supervision-timeout", "out-of-range", "write-lost"),
    "pty": ("hang-up", "silent-line"),
    "tcp": ("reset", "refused"),
}
OUT_OF_REACH = {"out-of-range", "hang-up", "refused"}
"""Kinds that keep the band out of reach for `hold_s` (the rest are momentary)."""
SHORT_S = (0.2, 2.5)
"""A brief outage: a few connects refused or timing out in a row."""
LONG_S = (6.0, 8.0)
"""Gone for longer than a campaign session waits for its band (5 s)."""
LONG_SHARE = 0.15
SILENT_S = (3.2, 4.0)
"""A silent line lasts long enough to be noticed (the session: 3 s without a sample)."""
AFTER_S = (0.5, 4.0)
"""When a cut comes, after the session is running (again)."""


@dataclass(frozen=True)
class Cut:
    index: int
    band: int
    kind: str
    after_s: float
    hold_s: float = 0.0

    def describe(self) -> str:
        held = f" for {self.hold_s:.1f} s" if self.hold_s else ""
        return f"cut {self.index} on band {self.band}: {self.kind}{held}"


def plan(transport: Transport, bands: int, disconnects: int, seed: int) -> list[Cut]:
    """The cuts, from the seed alone: the same seed gives the same cuts."""
    rng = random.Random(f"link-campaign:{transport}:{seed}")
    cuts = []
    for i in range(disconnects):
        kind = rng.choice(KINDS[transport])
        after = round(rng.uniform(*AFTER_S), 2)
        hold = 0.0
        if kind in OUT_OF_REACH:
            hold = rng.uniform(*(LONG_S if rng.random() < LONG_SHARE else SHORT_S))
        elif kind == "silent-line":
            hold = rng.uniform(*SILENT_S)
        cuts.append(Cut(i, i % bands, kind, after, round(hold, 2)))
    return cuts


async def make_cut(band: ServedBand, cut: Cut) -> None:
    """Fail the band's link the way `cut.kind` says, from the band's side."""
    if cut.kind == "silent-line":
        band.silence(cut.hold_s)
    elif cut.kind == "write-lost":
        assert isinstance(band, BleServedBand)
        band.swallow_next_write()
    elif cut.kind in OUT_OF_REACH:
        await band.go_away(cut.hold_s)
    else:  # supervision-timeout, reset
        assert isinstance(band, BleServedBand | TcpBand | PtyBand)
        await band.drop()

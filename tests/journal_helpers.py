"""Journal rows written by hand: what earlier sessions leave behind for a test to read."""

from __future__ import annotations

from typing import Any

from acudevice.store import Journal


def begin_row(journal: Journal, **fields: Any) -> int:
    """A session row for a nausea-relief run on a simulated wrist band, unless `fields` say
    otherwise; returns its id."""
    row: dict[str, Any] = {
        "program": "nausea-relief",
        "devices": ["sim://"],
        "device_model": "wristband-p1",
        "actuator": "pressure",
        "cap_level": 20_000,
        "limits": {},
        "confirmations": [],
        "schedule": {},
        "repeats_planned": 4,
    }
    row.update(fields)
    return journal.begin_session(**row)

"""The firmware's hardware abstraction: what a board gives the firmware to read.

The firmware sees the world only through it (sensor readings, the battery gauge), never
the plant's true level; `simulator.core.device.SimDevice` is the simulated board.
"""

from __future__ import annotations

from typing import Protocol


class Board(Protocol):
    """The firmware's hardware abstraction: what the simulated device provides."""

    def read_level(self) -> int: ...

    def read_check_level(self) -> int | None:
        """The second, independent sensor (None when the model has one sensor)."""
        ...

    def battery_charge(self) -> float: ...

    def new_run(self, run: int) -> None: ...

"""The queue of messages from the broker: bounded, and a flood can never hold up a stop.

aiomqtt puts every message it receives into one queue (`queue_type`), which the bridge reads.
A bound keeps a flood from growing it without end (aiomqtt #108, #250); but a plain bounded
queue drops whatever arrives when it is full, and that could be a stop, and serves it after
everything ahead of it. This one keeps the messages `precious` names (stop and estop) apart:
they come out first, and a full queue drops its **oldest ordinary** message, never one of
them for an ordinary one. It also lets the reader take everything waiting at once
(`take_waiting`): aiomqtt's own iterator costs a task and a turn of the event loop per message.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

INCOMING_QUEUE = 10_000
"""Ordinary messages waiting; as many again may be precious."""


class IncomingQueue(asyncio.Queue[Any]):
    """An `asyncio.Queue` with its own storage rules (the hooks PriorityQueue overrides)."""

    def __init__(
        self, bound: int = INCOMING_QUEUE, precious: Callable[[Any], bool] = lambda _: False
    ) -> None:
        self.bound = bound
        self.precious = precious
        self.dropped = 0
        """Messages dropped because their part of the queue was full (the oldest go)."""
        super().__init__()  # no maxsize of asyncio's: put_nowait never refuses, _put decides

    def _init(self, maxsize: int) -> None:
        self._queue: deque[Any] = deque()
        self._first: deque[Any] = deque()

    def qsize(self) -> int:
        return len(self._queue) + len(self._first)

    def empty(self) -> bool:
        return not (self._queue or self._first)

    def _put(self, item: Any) -> None:
        queue = self._first if self.precious(item) else self._queue
        if len(queue) >= self.bound:
            queue.popleft()
            self.dropped += 1
        queue.append(item)

    def _get(self) -> Any:
        return self._first.popleft() if self._first else self._queue.popleft()

    def take_waiting(self) -> list[Any]:
        """Everything waiting now, precious first, without awaiting."""
        items = [*self._first, *self._queue]
        self._first.clear()
        self._queue.clear()
        return items

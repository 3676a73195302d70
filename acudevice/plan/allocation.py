"""Seeded permuted-block randomisation, reproducible anywhere from its written definition.

Arms have ratios r (1:1, 2:1, ...; R their sum). Each stratum (or the whole study, when not
stratified) has its own sequence of blocks. Block k of stratum s:

1. its size is one of the protocol's block sizes (each a multiple of R), the i-th where
   i = draw(number of sizes);
2. it holds each arm r * size / R times, arms in the protocol's order;
3. it is shuffled by Fisher-Yates: for j from size-1 down to 1, swap j with draw(j + 1).

`draw(n)` is the next integer of an unbiased stream: the first 8 bytes (big-endian) of
SHA-256("acudevice-allocation-v1|<seed>|<stratum>|<k>|<c>"), c = 0, 1, 2, ... counting every
hash taken for the block, rejected while >= 2**64 - (2**64 mod n), then taken mod n. The
n-th participant enrolled in a stratum gets the n-th entry of its sequence. Only hashing and
integers: no library's random generator, whose sequences may change between versions.
A stratum is written `attr=value;attr=value` with attributes in alphabetical order, or ""
when the study is not stratified.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ALGORITHM = "acudevice-allocation-v1"


class _Draws:
    def __init__(self, seed: int, stratum: str, block: int) -> None:
        self._prefix = f"{ALGORITHM}|{seed}|{stratum}|{block}|"
        self._counter = 0

    def below(self, n: int) -> int:
        limit = 2**64 - (2**64 % n)
        while True:
            digest = hashlib.sha256(f"{self._prefix}{self._counter}".encode()).digest()
            self._counter += 1
            value = int.from_bytes(digest[:8], "big")
            if value < limit:
                return value % n


@dataclass(frozen=True)
class Design:
    """What the sequence depends on, and nothing else."""

    seed: int
    arms: tuple[tuple[str, int], ...]
    """(arm, ratio), in the protocol's order."""
    block_sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        total = sum(ratio for _, ratio in self.arms)
        if not self.arms or any(ratio < 1 for _, ratio in self.arms):
            raise ValueError("every arm needs a ratio of at least 1")
        if not self.block_sizes or any(b < 1 or b % total for b in self.block_sizes):
            raise ValueError(f"block sizes must be multiples of the ratios' sum {total}")

    def block(self, stratum: str, k: int) -> list[str]:
        """The k-th block (0-based) of `stratum`'s sequence."""
        draws = _Draws(self.seed, stratum, k)
        size = self.block_sizes[draws.below(len(self.block_sizes))]
        total = sum(ratio for _, ratio in self.arms)
        cells = [arm for arm, ratio in self.arms for _ in range(ratio * size // total)]
        for j in range(len(cells) - 1, 0, -1):
            i = draws.below(j + 1)
            cells[i], cells[j] = cells[j], cells[i]
        return cells

    def sequence(self, stratum: str, count: int) -> list[str]:
        """The first `count` allocations of `stratum`."""
        out: list[str] = []
        k = 0
        while len(out) < count:
            out += self.block(stratum, k)
            k += 1
        return out[:count]

    def arm_at(self, stratum: str, position: int) -> str:
        """The arm of the `position`-th participant (1-based) enrolled in `stratum`."""
        if position < 1:
            raise ValueError("positions start at 1")
        return self.sequence(stratum, position)[-1]


def stratum_key(attributes: Mapping[str, str], by: Sequence[str]) -> str:
    """`attr=value;...` for the stratifying attributes `by` (alphabetical), "" for none."""
    return ";".join(f"{name}={attributes[name]}" for name in sorted(by))

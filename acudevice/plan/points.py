"""The acupoint catalog: where a point is, how sensitive it is, when to avoid it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from acudevice.errors import NotFoundError

Limb = Literal["arm", "leg", "trunk"]
Sensitivity = Literal["normal", "sensitive"]


class Point(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name: str
    aliases: tuple[str, ...] = ()
    region: str
    limb: Limb
    sensitivity: Sensitivity
    location: str = Field(min_length=10, description="placement guidance a user can follow")
    uses: tuple[str, ...] = ()
    cautions: tuple[str, ...] = ()
    pregnancy_avoid: bool

    @property
    def label(self) -> str:
        alias = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.code}{alias} {self.name}"


class PointCatalog:
    """Points by code, with aliases resolved case-insensitively."""

    def __init__(self, points: Mapping[str, Point]) -> None:
        self._points = dict(points)
        self._index: dict[str, str] = {}
        for code, point in self._points.items():
            for key in (code, *point.aliases):
                self._index[key.upper()] = code

    def resolve(self, code_or_alias: str) -> Point:
        code = self._index.get(code_or_alias.upper())
        if code is None:
            known = ", ".join(sorted(self._index))
            raise NotFoundError(f"unknown point {code_or_alias!r}; known points: {known}")
        return self._points[code]

    def __contains__(self, code_or_alias: object) -> bool:
        return isinstance(code_or_alias, str) and code_or_alias.upper() in self._index

    def __iter__(self) -> Iterator[Point]:
        return iter(self._points.values())

    def __len__(self) -> int:
        return len(self._points)

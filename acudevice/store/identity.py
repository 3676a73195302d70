"""Who a record is about: participant pseudonyms, checked in one place for every entry point.

A participant id is a pseudonym chosen by the study (`P017`, `site2-a`), never a name: 1-32
letters, digits, `_` or `-`. The same rule guards the command line, `bridge.toml`, the
journal, records arriving at the centre and the withdrawal topic (it is a topic level).
"""

from __future__ import annotations

import re

from acudevice.errors import InputError, Problem

PARTICIPANT_PATTERN = r"[A-Za-z0-9_-]{1,32}"
_PARTICIPANT = re.compile(PARTICIPANT_PATTERN)


def is_participant(value: object) -> bool:
    return isinstance(value, str) and _PARTICIPANT.fullmatch(value) is not None


def check_participant(value: str, source: str = "participant") -> str:
    """`value` if it is a pseudonym, else an InputError naming `source` (one line)."""
    if not is_participant(value):
        raise InputError(
            [
                Problem(
                    source,
                    "",
                    f"{value!r} is not a participant pseudonym: 1-32 letters, digits, '_' or '-'",
                )
            ]
        )
    return value

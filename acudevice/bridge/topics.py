"""Topic names, in one place: `<prefix>/<gateway>/...` and `<prefix>/<gateway>/<band>/...`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from acudevice.errors import InputError, Problem

Verb = Literal["stop", "estop", "pause", "resume", "too-strong", "intensity", "start"]
VERBS: tuple[str, ...] = get_args(Verb)
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HA_STATUS = "homeassistant/status"
STUDY_LEVEL = "study"
"""`<prefix>/study/...` carries the study centre's notices, so no gateway may be called so."""


def check_segment(value: str, source: str) -> str:
    """A topic level we publish under: no `/`, `+`, `#`, spaces or empties."""
    if not _SEGMENT.match(value):
        raise InputError(
            [Problem(source, "", f"{value!r} must be 1-64 letters, digits, '_' or '-'")]
        )
    return value


def withdrawn_topic(prefix: str, participant: str) -> str:
    """The retained notice that `participant` left the study (acudevice study withdraw)."""
    return f"{prefix}/{STUDY_LEVEL}/withdrawn/{participant}"


def protocol_topic(prefix: str, participant: str) -> str:
    """The retained study protocol for `participant`'s gateway (acudevice study enroll):
    their schedule, reminders and the program behind their label (docs/trials.md)."""
    return f"{prefix}/{STUDY_LEVEL}/participants/{participant}/protocol"


def band_id_for(url: str) -> str:
    """A band id from a device URL or alias: every run of other characters becomes '-'."""
    slug = re.sub(r"[^A-Za-z0-9_]+", "-", url.split("://", 1)[-1]).strip("-")
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return (f"{scheme}-{slug}" if scheme and slug else slug or scheme or "band")[:64]


@dataclass(frozen=True)
class Topics:
    prefix: str
    gateway: str

    def __post_init__(self) -> None:
        for i, level in enumerate(self.prefix.split("/")):
            check_segment(level, f"--prefix (level {i + 1})")
        check_segment(self.gateway, "--gateway")
        if self.gateway == STUDY_LEVEL:
            raise InputError(
                [
                    Problem(
                        "--gateway",
                        "",
                        f"{STUDY_LEVEL!r} is reserved: <prefix>/study/ carries the study's notices",
                    )
                ]
            )

    @property
    def root(self) -> str:
        return f"{self.prefix}/{self.gateway}"

    @property
    def status(self) -> str:
        return f"{self.root}/status"

    @property
    def records(self) -> str:
        """Where this gateway publishes its outbox (acudevice/bridge/records.py)."""
        return f"{self.root}/records"

    @property
    def records_ack(self) -> str:
        """Where the centre confirms what it has committed."""
        return f"{self.root}/records/ack"

    @property
    def telemetry(self) -> str:
        """Every band's samples, batched (acudevice/bridge/telemetry.py)."""
        return f"{self.root}/telemetry"

    @property
    def stats(self) -> str:
        return f"{self.root}/stats"

    def band(self, band: str, leaf: str) -> str:
        return f"{self.root}/{band}/{leaf}"

    def command(self, band: str, verb: str) -> str:
        return f"{self.root}/{band}/cmd/{verb}"

    @property
    def command_filter(self) -> str:
        return f"{self.root}/+/cmd/+"

    def is_stop(self, topic: str) -> bool:
        """A stop or estop command of ours: it goes ahead of every other message."""
        parsed = self.parse_command(topic)
        return parsed is not None and parsed[1] in ("stop", "estop")

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """(band, verb) of a command topic of ours; None for anything else (results, others)."""
        head = self.root + "/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        if len(parts) != 3 or parts[1] != "cmd" or parts[2] == "result":
            return None
        return parts[0], parts[2]

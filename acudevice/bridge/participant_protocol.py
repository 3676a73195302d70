"""What the study centre delivers to a participant's gateway: their label, schedule,
reminders and the program behind the label, as one retained MQTT message.

Topic `<prefix>/study/participants/<ID>/protocol` (topics.protocol_topic), QoS 1, retained;
only the centre may write it and only gateways read it (acl.py). An empty retained message
means "no protocol" (the participant withdrew). The payload never names the arm or the real
program: `program` is already renamed after the label (plan/protocol.py,
`Study.participant_program`). A gateway reads it with `decode`, which refuses anything
oversized or malformed in one line naming the topic and field.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, ValidationError

from acudevice.errors import InputError, Problem
from acudevice.files import problems_from_validation
from acudevice.plan.library import load_points
from acudevice.plan.points import PointCatalog
from acudevice.plan.program import Program
from acudevice.plan.protocol import Label, Slug, Study
from acudevice.plan.reminders import ReminderSettings
from acudevice.plan.timetable import Timetable
from acudevice.store.identity import PARTICIPANT_PATTERN

VERSION: Literal[1] = 1
MAX_PROTOCOL_BYTES = 64 * 1024


class ParticipantProtocol(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = VERSION
    participant: Annotated[str, StringConstraints(pattern=f"^{PARTICIPANT_PATTERN}$"), Strict()]
    study: Slug
    label: Label
    """Everything the participant sees calls their program this."""
    program: Program
    """The program to run, named after the label (`program.name`, `program.title`)."""
    schedule: Timetable
    reminders: ReminderSettings | None = None
    """None: the study sends no reminders."""
    issued_at: Annotated[float, Strict(), Field(ge=0, le=1e11, allow_inf_nan=False)]


def for_participant(
    study: Study, arm: str, participant: str, schedule: Timetable, at: float | None = None
) -> ParticipantProtocol:
    return ParticipantProtocol(
        participant=participant,
        study=study.name,
        label=study.arm(arm).label,
        program=study.participant_program(arm),
        schedule=schedule,
        reminders=study.protocol.reminders,
        issued_at=time.time() if at is None else at,
    )


def encode(protocol: ParticipantProtocol) -> bytes:
    return protocol.model_dump_json().encode()


def decode(
    payload: bytes, topic: str, catalog: PointCatalog | None = None
) -> ParticipantProtocol | None:
    """The protocol in a message on `topic`; None for an empty one (withdrawn). Refused
    (InputError): oversized, malformed, for another participant than the topic's, or a
    program on a point `catalog` (the shipped points) does not know."""
    if not payload:
        return None
    if len(payload) > MAX_PROTOCOL_BYTES:
        raise InputError(
            [Problem(topic, "", f"{len(payload)} bytes; at most {MAX_PROTOCOL_BYTES} allowed")]
        )
    try:
        protocol = ParticipantProtocol.model_validate_json(payload)
    except ValidationError as exc:
        raise InputError(problems_from_validation(topic, exc, ParticipantProtocol)) from None
    parts = topic.split("/")
    if len(parts) < 3 or parts[-1] != "protocol" or parts[-2] != protocol.participant:
        raise InputError([Problem(topic, "participant", "is not the participant of the topic")])
    catalog = catalog or load_points()
    problems = [
        Problem(topic, f"program.sites[{i}].point", f"unknown point {site.point!r}")
        for i, site in enumerate(protocol.program.sites)
        if site.point not in catalog
    ]
    if problems:
        raise InputError(problems)
    return protocol

"""The gateway's side of a study: records out to the centre, withdrawal notices in.

On every broker connection the bridge hands this object the link:

- its journal's outbox goes to the centre through a `RecordSender` (bridge/records.py), run
  beside the bridge's message loop; acks on `<p>/<gw>/records/ack` delete what the centre
  committed, and the sender is woken whenever a session says something (its journal writes);
- retained withdrawal notices on `<p>/study/withdrawn/<ID>` (acudevice study withdraw)
  withdraw the participant on this gateway: `Journal.withdraw` deletes their sessions,
  samples, events, comfort maxima and queued records at once and refuses their sessions from
  then on, and a session of theirs still running is stopped (the band vents) with the cause
  in its `session-finished` event. The journal goes first, before the session is told: from
  the moment the notice is read nothing more of theirs is written or queued, not even the
  stopped session's last samples.

A notice that does not say what its topic says is ignored and logged: a deletion cannot be
undone. Without a journal (an embedded bridge) nothing is sent, and a withdrawal only refuses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from acudevice.bridge.band import BandAgent
from acudevice.bridge.mqtt import BrokerError, Inbound, MqttLink
from acudevice.bridge.participants import Participants
from acudevice.bridge.records import RecordSender
from acudevice.bridge.topics import Topics, withdrawn_topic
from acudevice.device.backoff import Backoff
from acudevice.session.events import Progress, SessionEvent
from acudevice.session.runner import Session
from acudevice.store import Journal, StoreError
from acudevice.store.identity import is_participant

log = logging.getLogger("acudevice.bridge.centre")

MAX_NOTICE_BYTES = 1024


class _Notice(BaseModel):
    """`{"v": 1, "participant": ID, "at": epoch}` (study/withdrawal.py); later keys ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    v: Literal[1]
    participant: str
    at: float


class StudyLink:
    def __init__(
        self,
        journal: Journal | None,
        topics: Topics,
        participants: Participants,
        agents: Mapping[str, BandAgent],
        *,
        ack_timeout_s: float = 30.0,
    ) -> None:
        self.journal = journal
        self.topics = topics
        self.participants = participants
        self.agents = agents
        self.sender = (
            RecordSender(journal, topics, ack_timeout_s=ack_timeout_s)
            if journal is not None
            else None
        )
        self.withdrawn: set[str] = set(journal.withdrawn()) if journal is not None else set()
        self.notices = withdrawn_topic(topics.prefix, "+")
        self._notice_head = withdrawn_topic(topics.prefix, "")
        for band, participant in participants.by_band.items():
            if participant in self.withdrawn:
                log.warning(
                    "band %s: participant %s has withdrawn; its sessions are refused",
                    band,
                    participant,
                )

    # ---------------------------------------------------------------- sessions

    def refusal(self, band: str) -> str | None:
        """Why a session may not start on `band` now (its participant withdrew), or None."""
        participant = self.participants.of(band)
        if participant is not None and participant in self.withdrawn:
            return (
                f"participant {participant} has withdrawn from the study: "
                f"band {band} takes no new sessions"
            )
        return None

    def follow(self, session: Session) -> None:
        """Wake the sender whenever the session journals something worth sending at once
        (begin, fault, comfort, intensity, end); samples go with the next poll."""
        if self.sender is not None:
            sender = self.sender

            def wake(event: SessionEvent) -> None:
                if not isinstance(event, Progress):
                    sender.wake()

            session.subscribe(wake)

    # ---------------------------------------------------------------- the link

    async def subscribe(self, link: MqttLink) -> None:
        if self.sender is not None:
            await link.subscribe(self.sender.ack_topic, qos=1)
        await link.subscribe(self.notices, qos=1)

    async def send(self, link: MqttLink) -> None:
        """Run the record sender on `link` until cancelled; a failure is logged and the
        sender starts again from the oldest unacknowledged row (the centre de-duplicates)."""
        if self.sender is None:
            return
        backoff = Backoff(1.0, 30.0)
        while True:
            try:
                await self.sender.run(link)
            except BrokerError as exc:
                log.warning("records: %s", exc)
            except (StoreError, OSError, ValueError) as exc:
                log.error("records: cannot read the outbox: %s", exc)
            except Exception:  # a bug in sending must not end the bridge's message loop
                log.exception("records: the sender failed")
            await asyncio.sleep(backoff.delay())

    def dispatch(self, message: Inbound) -> bool:
        """Handle an ack or a withdrawal notice; False for any other message."""
        if self.sender is not None and message.topic == self.sender.ack_topic:
            self.sender.on_ack(message.payload)
            return True
        if message.topic.startswith(self._notice_head):
            self._notice(message.topic[len(self._notice_head) :], message.payload)
            return True
        return False

    # ---------------------------------------------------------------- withdrawal

    def _notice(self, level: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained notice: nothing to do (and nothing to undo)
        participant = _read_notice(level, payload)
        if participant is None:
            return
        already = participant in self.withdrawn
        self.withdrawn.add(participant)
        deleted = 0
        if self.journal is not None:
            try:
                deleted = self.journal.withdraw(participant)
            except StoreError as exc:  # refused from now on all the same; said loudly
                log.error(
                    "withdrawal of %s: could not delete the journal's data: %s", participant, exc
                )
        if not already or deleted:
            log.warning(
                "participant %s withdrew from the study: %d session(s) deleted from the "
                "journal; their sessions are refused",
                participant,
                deleted,
            )
        for agent in self.agents.values():
            session = agent.slot.session
            if session is not None and session.participant == participant:
                # Now, with no await since the journal's withdrawal: the session's task does
                # not run again before it is cancelled, so it writes nothing more.
                session.cancel(f"participant {participant} withdrew from the study")


def _read_notice(level: str, payload: bytes) -> str | None:
    """The participant a notice withdraws, or None (logged) when it is not a clean notice."""
    if not is_participant(level):
        log.warning("ignored a withdrawal notice for %r: not a participant pseudonym", level[:40])
        return None
    if len(payload) > MAX_NOTICE_BYTES:
        log.warning("ignored a withdrawal notice for %s: %d bytes", level, len(payload))
        return None
    try:
        notice = _Notice.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        log.warning("ignored a withdrawal notice for %s: %s: %s", level, where, first["msg"])
        return None
    if notice.participant != level:
        log.warning("ignored a withdrawal notice on the topic of %s naming someone else", level)
        return None
    return level

"""The bridge: one MQTT client for the gateway, one agent per band, commands in, state out.

Connection follows aiomqtt's own pattern (one client, `async with` in a loop) with jittered
backoff. On every connect: subscribe, publish `online`, availability, state and discovery,
then the events kept while the broker was away. While disconnected, telemetry and state are
dropped (the journal still has everything); bands stay connected and heartbeated.

With a journal, the same connection carries the journal's records to the study centre and
brings its withdrawal notices (bridge/centre.py); each band's sessions are those of its
participant (bridge/participants.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from acudevice.bridge.admission import CommandGate, Limits
from acudevice.bridge.band import AgentSettings, BandAgent, StartRefused
from acudevice.bridge.centre import StudyLink
from acudevice.bridge.commands import CommandDesk, StartGuard
from acudevice.bridge.discovery import band_config, config_topic, device_id, gateway_config
from acudevice.bridge.mqtt import (
    BrokerAddress,
    BrokerError,
    BrokerRefused,
    Credentials,
    Inbound,
    MqttClient,
    MqttLink,
    Will,
)
from acudevice.bridge.outgoing import Message, Outgoing
from acudevice.bridge.ownership import Instance, check_free, instance_topic
from acudevice.bridge.participants import Participants
from acudevice.bridge.payloads import CommandResult, EventPayload
from acudevice.bridge.stats import report_stats, snapshot
from acudevice.bridge.telemetry import Batch, TelemetryBatcher, publish_batches
from acudevice.bridge.topics import HA_STATUS, Topics
from acudevice.device.backoff import Backoff
from acudevice.device.keeper import Keeper
from acudevice.plan.library import ProgramLibrary
from acudevice.plan.program import Program
from acudevice.safety.profile import HealthProfile
from acudevice.session.runner import LinkPolicy, Session
from acudevice.store import Journal

log = logging.getLogger("acudevice.bridge")

KEPT_EVENTS = 200
CONNECTING = 16


@dataclass
class BridgeOptions:
    broker: BrokerAddress
    gateway: str
    bands: dict[str, str]
    """band id -> device URL or alias."""
    prefix: str = "acudevice"
    credentials: Credentials = field(default_factory=Credentials)
    ca_file: Path | None = None
    allow_remote_start: bool = False
    ha_discovery: bool = False
    telemetry_hz: float = 1.0
    """Per-band telemetry (Home Assistant, people); every sample goes out in the batches."""
    batch_window_ms: int = 100
    """`<prefix>/<gateway>/telemetry`: every band's samples of this window; 0: no batches."""
    command_limits: Limits = field(default_factory=Limits)
    broker_grace_s: float = 10.0
    remote_max_s: float = 3600.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    profile: HealthProfile = field(default_factory=HealthProfile)
    """The gateway's own profile: for bands (and participants) without one of their own."""
    participants: Participants = field(default_factory=Participants)
    record_ack_timeout_s: float = 30.0
    """Records unacknowledged this long are sent again (the centre may have missed them)."""


class Bridge:
    def __init__(
        self,
        options: BridgeOptions,
        *,
        library: ProgramLibrary | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.options = options
        self.topics = Topics(options.prefix, options.gateway)
        self.library = library or ProgramLibrary()
        self.journal = journal
        self.batcher = TelemetryBatcher(options.gateway)
        settings = AgentSettings(
            batcher=self.batcher if options.batch_window_ms else None,
            telemetry_hz=options.telemetry_hz,
            broker_grace_s=options.broker_grace_s,
            remote_max_s=options.remote_max_s,
            make_session=self._make_session,
            connecting=asyncio.Semaphore(CONNECTING),
        )
        self.agents = {
            band: BandAgent(band, url, self, settings, options.participants.of(band))
            for band, url in options.bands.items()
        }
        self.study = StudyLink(
            journal,
            self.topics,
            options.participants,
            self.agents,
            ack_timeout_s=options.record_ack_timeout_s,
        )
        self.desk = CommandDesk(
            self.agents,
            StartGuard(options.allow_remote_start, self.library, options.remote_max_s),
            self._reply,
        )
        self.gate = CommandGate(
            self.agents,
            lambda band, verb, raw, retained: self.desk.handle(band, verb, raw, retained=retained),
            self._reply,
            options.command_limits,
        )
        self.out = Outgoing()
        self.mqtt = MqttClient(
            options.broker,
            client_id=options.gateway,
            credentials=options.credentials,
            will=Will(self.topics.status, "offline", qos=1, retain=True),
            ca_file=options.ca_file,
            precious=self.topics.is_stop,  # read first, never dropped for another command
        )
        self.connected = asyncio.Event()
        self._link: MqttLink | None = None
        self._kept_events: deque[EventPayload] = deque(maxlen=KEPT_EVENTS)
        self._down_since: float | None = None
        self.instance = Instance()

    # ---------------------------------------------------------------- outlet for agents

    def publish(self, topic_leaf: str, band: str, payload: str, *, qos: int, retain: bool) -> None:
        if self._link is None:
            return  # retained state is re-published on connect; telemetry is never queued
        topic = self.topics.band(band, topic_leaf)
        if topic_leaf == "telemetry":
            self.out.telemetry(topic, payload)
        else:
            self.out.urgent(Message(topic, payload, qos, retain))

    def event(self, payload: EventPayload) -> None:
        if self._link is None:
            self._kept_events.append(payload)  # told when the broker is back
            return
        self._send(
            self.topics.band(payload.band, "events")
            if payload.band
            else f"{self.topics.root}/events",
            payload.model_dump_json(),
            qos=1,
        )

    def band_connected(self, band: str) -> None:
        """Its model is known only now: a band that connects after the gateway announced it
        (as an unknown model) is announced again, so a vibration pad shows no pressure."""
        if self.options.ha_discovery and self._link is not None:
            self._band_discovery(self.agents[band], self._remote_programs())

    def _send(self, topic: str, payload: str, *, qos: int = 1, retain: bool = False) -> None:
        self.out.urgent(Message(topic, payload, qos, retain))

    def _send_batch(self, batch: Batch) -> None:
        self.out.telemetry(self.topics.telemetry, batch.payload, samples=batch.samples)

    def _reply(self, result: CommandResult) -> None:
        self._send(self.topics.command(result.band, "result"), result.model_dump_json(), qos=1)

    # ---------------------------------------------------------------- sessions

    def _make_session(self, program: Program, keeper: Keeper, band: str) -> Session:
        """A session for the band's participant, screened with their profile and their
        remembered comfort maxima, journalled (and queued for the centre) as theirs."""
        refusal = self.study.refusal(band)
        if refusal is not None:
            raise StartRefused(refusal)
        participants = self.options.participants
        session = Session(
            program,
            [keeper],
            profile=participants.profile(band, self.options.profile),
            confirm_reason=None,  # soft limits are never confirmed remotely
            journal=self.journal,
            catalog=self.library.catalog,
            link=LinkPolicy(end_on_link_loss=True),
            participant=participants.of(band),
            gateway=self.options.gateway,
            band=band,
        )
        self.study.follow(session)
        return session

    async def start_local(self, band: str, program_name: str) -> None:
        """Start a session from this gateway itself (not from the broker)."""
        await self.agents[band].start(self.library.get(program_name), "local")

    # ---------------------------------------------------------------- running

    async def run(self) -> None:
        """Run until cancelled; raises BrokerRefused when the broker rejects our credentials."""
        agent_tasks = [
            asyncio.create_task(a.run(), name=f"acudevice-band-{a.band}")
            for a in self.agents.values()
        ]
        agent_tasks += self._timers()
        try:
            await self._broker_loop()
        finally:
            for task in agent_tasks:
                task.cancel()
            await asyncio.gather(*agent_tasks, return_exceptions=True)
            await self.gate.close()

    def _timers(self) -> list[asyncio.Task[None]]:
        """Telemetry batches every window, the gateway's counters every 10 s."""
        counters = self.out.counters
        stats = asyncio.create_task(
            report_stats(
                lambda: snapshot(
                    self.batcher.run, counters, self.gate.counters, self.mqtt.incoming.dropped
                ),
                lambda payload: self._send(self.topics.stats, payload, qos=0, retain=True),
            )
        )
        window_ms = self.options.batch_window_ms
        if not window_ms:
            return [stats]
        batches = publish_batches(
            self.batcher, self._send_batch, window_ms / 1000, lambda: counters.dropped_samples
        )
        return [stats, asyncio.create_task(batches)]

    async def _broker_loop(self) -> None:
        o = self.options
        client = self.mqtt
        backoff = Backoff(o.backoff_initial_s, o.backoff_max_s)
        while True:
            try:
                # Before taking the client id, and after every drop: is another bridge
                # serving this gateway id? Then stop (GatewayTaken), never flap.
                await check_free(
                    o.broker,
                    self.topics,
                    self.instance,
                    credentials=o.credentials,
                    ca_file=o.ca_file,
                )
                async with client.connect() as link:
                    backoff.reset()
                    await self._serve(link)
            except BrokerRefused:
                raise  # the same credentials will not work next time either
            except BrokerError as exc:
                log.warning("broker %s: %s", o.broker, exc)
            delay = backoff.delay()
            log.info("reconnecting to %s in %.1f s", o.broker, delay)
            await asyncio.sleep(delay)

    async def _serve(self, link: MqttLink) -> None:
        self.out.attach(link)
        sender: asyncio.Task[None] | None = None
        try:
            await link.subscribe(self.topics.command_filter, qos=1)
            if self.options.ha_discovery:
                await link.subscribe(HA_STATUS, qos=1)
            await self.study.subscribe(link)
            self._link = link
            self.connected.set()
            await link.publish(self.topics.status, "online", qos=1, retain=True)
            await link.publish(
                instance_topic(self.topics), self.instance.payload(), qos=1, retain=True
            )
            self._announce()
            self._broker_back()
            # The study's records go out beside everything else, until this link goes.
            sender = asyncio.create_task(self.study.send(link))
            async for message in link.messages():
                self._dispatch(message)
        except asyncio.CancelledError:
            # Sessions end first, while the broker can still hear how (session-finished,
            # a state that is not `running`); then, as a clean DISCONNECT discards the will
            # (aiomqtt #340), say offline ourselves.
            with contextlib.suppress(BrokerError, TimeoutError):
                async with asyncio.timeout(30):
                    await asyncio.gather(*(a.shut_down() for a in self.agents.values()))
                async with asyncio.timeout(2):
                    for agent in self.agents.values():
                        agent.publish_state(at_once=True)
                    await self._drain()
                    for band in self.agents:  # the bands go with us: their links close next
                        topic = self.topics.band(band, "availability")
                        await link.publish(topic, "offline", qos=1, retain=True)
                    await link.publish(self.topics.status, "offline", qos=1, retain=True)
            raise
        finally:
            if sender is not None:
                sender.cancel()
                await asyncio.wait([sender])
            self._link = None
            self.connected.clear()
            self.out.detach()
            self._broker_lost()

    async def _drain(self) -> None:
        await self.out.drain()

    def _announce(self) -> None:
        """Everything retained, again: after a reconnect the broker may have lost it."""
        for agent in self.agents.values():
            agent.availability()
            agent.publish_state()
        if self.options.ha_discovery:
            self._discovery()

    def _discovery(self) -> None:
        topic, payload = gateway_config(self.topics)
        self._send(topic, payload, retain=True)
        programs = self._remote_programs()
        for agent in self.agents.values():
            self._band_discovery(agent, programs)

    def _remote_programs(self) -> dict[str, str] | None:
        """Program name -> actuator, for the start select (each band is offered its own kind)."""
        if not self.options.allow_remote_start:
            return None
        return {name: p.actuator for name, (_, p) in self.library.load_all().items() if not p.sham}

    def _band_discovery(self, agent: BandAgent, programs: dict[str, str] | None) -> None:
        info = agent.device.info if agent.device is not None else None
        topic, payload = band_config(
            self.topics,
            agent.band,
            model=info.model if info else None,
            actuator=info.device_model.actuator if info else None,
            programs=programs,
        )
        self._send(topic, payload, retain=True)

    async def forget(self, band: str) -> None:
        """A band taken off this gateway: its discovery config goes, its availability is offline."""
        self._send(config_topic(self.topics, device_id(self.topics, band)), "", retain=True)
        self._send(self.topics.band(band, "availability"), "offline", retain=True)
        await self._drain()

    def _broker_back(self) -> None:
        kept = list(self._kept_events)
        self._kept_events.clear()
        for agent in self.agents.values():
            agent.broker_back()
        for payload in kept:
            self.event(payload)
        if self._down_since is not None:
            self.event(
                EventPayload(
                    event="broker-outage",
                    ts=time.time(),
                    detail=f"back after {time.time() - self._down_since:.1f} s without the broker",
                )
            )
        self._down_since = None

    def _broker_lost(self) -> None:
        self._down_since = time.time()
        for agent in self.agents.values():
            agent.broker_lost()

    def _dispatch(self, message: Inbound) -> None:
        if self.study.dispatch(message):
            return
        if message.topic == HA_STATUS:
            if message.payload == b"online" and self.options.ha_discovery:
                self._announce()
            return
        parsed = self.topics.parse_command(message.topic)
        if parsed is None:
            return
        band, verb = parsed
        self.gate.submit(band, verb, message.payload, retained=message.retain)

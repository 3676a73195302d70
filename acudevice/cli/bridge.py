"""`acudevice bridge` and `acudevice mqtt-acl`: the bridge package is imported inside the commands."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from acudevice.bridge.ranges import (
    BATCH_WINDOW_MS,
    BROKER_GRACE_S,
    REMOTE_MAX_S,
    SIM_FLEET,
    SIM_SPEED,
    TELEMETRY_HZ,
)
from acudevice.cli.common import build_profile, err, out, reports_errors

if TYPE_CHECKING:  # the bridge (and aiomqtt) load only when the command runs
    from acudevice.bridge.config import BrokerSettings
    from acudevice.bridge.gateway import Bridge


@reports_errors
def bridge(
    broker: Annotated[
        str | None, typer.Option("--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    ] = None,
    ca: Annotated[Path | None, typer.Option("--ca", help="CA certificate for mqtts://")] = None,
    username: Annotated[str | None, typer.Option("--username")] = None,
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="file whose first line is the password")
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option("--gateway", help="gateway id and MQTT client id (default: host name)"),
    ] = None,
    device: Annotated[
        list[str] | None, typer.Option("--device", help="URL, alias or ID=URL; repeatable")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="topic prefix (default acudevice)")
    ] = None,
    allow_remote_start: Annotated[
        bool, typer.Option("--allow-remote-start", help="accept cmd/start (guarded)")
    ] = False,
    ha_discovery: Annotated[
        bool, typer.Option("--ha-discovery", help="announce bands to Home Assistant")
    ] = False,
    telemetry_hz: Annotated[
        float | None,
        typer.Option("--telemetry-hz", help=f"telemetry per band, {TELEMETRY_HZ} (default 1)"),
    ] = None,
    batch_window_ms: Annotated[
        int | None,
        typer.Option(
            "--batch-window-ms",
            help="every band's samples in one message per window on <prefix>/<gw>/telemetry, "
            f"{BATCH_WINDOW_MS} (default 100; 0: none)",
        ),
    ] = None,
    broker_grace: Annotated[
        float | None,
        typer.Option(
            "--broker-grace",
            help="time without the broker before a remote session stops, "
            f"{BROKER_GRACE_S} (default 10)",
        ),
    ] = None,
    remote_max: Annotated[
        float | None,
        typer.Option("--remote-max", help=f"longest remote session, {REMOTE_MAX_S} (default 3600)"),
    ] = None,
    sim_fleet: Annotated[
        int | None,
        typer.Option("--sim-fleet", help=f"add N simulated bands, N {SIM_FLEET} (demos, tests)"),
    ] = None,
    sim_speed: Annotated[
        int, typer.Option("--sim-speed", help=f"speed of the --sim-fleet bands, {SIM_SPEED}")
    ] = 1,
    fleet_run: Annotated[
        str | None,
        typer.Option(
            "--fleet-run", metavar="PROGRAM", help="start PROGRAM locally on every band at start-up"
        ),
    ] = None,
    profile_file: Annotated[
        Path | None, typer.Option("--profile", help="the gateway's health profile TOML")
    ] = None,
    participant: Annotated[
        list[str] | None,
        typer.Option(
            "--participant",
            metavar="BAND=ID",
            help="the study participant wearing BAND (a pseudonym); repeatable",
        ),
    ] = None,
    participant_profile: Annotated[
        list[str] | None,
        typer.Option(
            "--participant-profile",
            metavar="ID=FILE",
            help="participant ID's health profile TOML; repeatable",
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="bridge.toml (default: the user config dir)")
    ] = None,
    forget: Annotated[
        list[str] | None,
        typer.Option(
            "--forget",
            metavar="BAND",
            help="clear BAND's retained discovery, availability and state on the broker, "
            "then exit (repeatable; for bands no bridge serves any more)",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Publish bands to an MQTT broker and take commands from it; Ctrl-C stops and vents."""
    from acudevice.bridge.config import broker_settings, build_options, load_file
    from acudevice.bridge.gateway import Bridge
    from acudevice.store import Journal

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    settings = load_file(config)
    if forget:
        _forget(
            forget,
            broker_settings(
                settings,
                broker=broker,
                ca=ca,
                username=username,
                password_file=password_file,
                gateway=gateway,
                prefix=prefix,
            ),
        )
        return
    options = build_options(
        settings,
        broker=broker,
        ca=ca,
        username=username,
        password_file=password_file,
        gateway=gateway,
        devices=device or [],
        prefix=prefix,
        allow_remote_start=allow_remote_start,
        ha_discovery=ha_discovery,
        telemetry_hz=telemetry_hz,
        batch_window_ms=batch_window_ms,
        broker_grace_s=broker_grace,
        remote_max_s=remote_max,
        sim_fleet=sim_fleet,
        sim_speed=sim_speed,
        profile=build_profile(profile_file, pregnant=False, cap_kpa=None),
        participants=participant or [],
        participant_profiles=participant_profile or [],
    )
    with Journal() as journal:
        instance = Bridge(options, journal=journal)
        if fleet_run is not None:
            instance.library.get(fleet_run)  # a bad name fails now, before connecting
        err.print(
            f"bridge {options.gateway}: {len(options.bands)} band(s) -> {options.broker} "
            f"(prefix {options.prefix}, remote start {'on' if options.allow_remote_start else 'off'}"
            f", {len(options.participants.by_band)} participant(s))",
            markup=False,
        )
        try:
            asyncio.run(_serve(instance, fleet_run))
            err.print("bridge stopped: bands told to stop; status offline published")
        except KeyboardInterrupt:
            err.print("bridge stopped: bands told to stop; status offline published")
            raise typer.Exit(130) from None


def _forget(bands: list[str], where: BrokerSettings) -> None:
    from acudevice.bridge.forgetting import forget_bands
    from acudevice.bridge.topics import Topics

    cleared = asyncio.run(
        forget_bands(
            where.address,
            Topics(where.prefix, where.gateway),
            bands,
            credentials=where.credentials,
            ca_file=where.ca_file,
        )
    )
    for topic in cleared:
        out.print(f"cleared {topic}")
    err.print(
        f"forgot {', '.join(bands)} on {where.address} (gateway {where.gateway}); a bridge "
        "that still serves a band announces it again"
    )


async def _serve(instance: Bridge, fleet_run: str | None) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, task.cancel)
    runner = asyncio.create_task(instance.run())
    try:
        if fleet_run is not None:
            await _start_fleet(instance, fleet_run)
        await runner
    except asyncio.CancelledError:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def _start_fleet(instance: Bridge, program: str) -> None:
    from acudevice.bridge.band import StartRefused
    from acudevice.errors import AcuDeviceError

    slots = asyncio.Semaphore(16)  # a few starts at a time: each is a handful of requests

    async def one(band: str) -> None:
        agent = instance.agents[band]
        await agent.connected.wait()
        try:
            async with slots:
                await instance.start_local(band, program)
        except (StartRefused, AcuDeviceError) as exc:  # one band's failure is that band's
            err.print(f"{band}: {exc}", markup=False)

    await asyncio.gather(*(one(b) for b in instance.agents))


@reports_errors
def mqtt_acl(
    gateway: Annotated[list[str], typer.Argument(metavar="GATEWAY...", help="gateway ids")],
    prefix: Annotated[str, typer.Option("--prefix")] = "acudevice",
) -> None:
    """Print a Mosquitto acl_file on stdout (`> acl`), and the password-file steps on stderr."""
    from acudevice.bridge.acl import acl_text, passwd_commands

    typer.echo(acl_text(gateway, prefix), nl=False)
    typer.echo(passwd_commands(gateway), nl=False, err=True)

"""`acudevice-sim`: serve a simulated device on a pseudo-terminal, a TCP port or BLE.

    acudevice-sim serve --pty [--model M] [--seed N] [--speed N|max] [--fault SPEC]... [-v]
    acudevice-sim serve --tcp PORT ...
    acudevice-sim serve --ble [HCI_PORT] ...     (docs/ble.md)
    acudevice-sim models
    acudevice-sim campaign --runs N --seed S [--json] [--png FILE] [--jobs J]
    acudevice-sim link-campaign --transport ble|pty|tcp --bands N --disconnects K --seed S [--json]
    acudevice-sim build-core [--force]           (the core, simulator/core/, compiled with mypyc)

The first line on stdout names where it serves as a device URL `acudevice` accepts, e.g.
`acudevice-sim: serving wristband-p1 on serial:///dev/pts/7` or `... on tcp://127.0.0.1:40123`.
A bad flag is one line on stderr (flag, value, range) and exit status 2.
SIGINT and SIGTERM vent the device first (logged on stderr), then exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

from acudevice.errors import AcuDeviceError
from acudevice.numbers import Span
from acudevice.plan.library import load_devices
from simulator.core.faults import FAULT_NAMES
from simulator.options import (
    BATTERY_PERCENT,
    SPEED,
    UPTIME_S,
    SimOptions,
    parse_seed,
    parse_speed,
)
from simulator.server import PtyServer, TcpServer
from simulator.simulation import Simulation

log = logging.getLogger("acudevice-sim")
T = TypeVar("T")

FAULT_HELP = """faults (repeat --fault):
  drop:MS          link silent MS wall ms after a client connects (pty: after start)
  corrupt:P        flip one byte of a frame with probability P (either way)
  duplicate:P      deliver a frame twice with probability P
  delay:MS         deliver every frame MS wall ms late
  stuck-pump[:MS]  pump/motor driver stuck on, MS device ms after the first START
  stuck-valve[:MS] release valve stuck shut, MS device ms after the first START
  drift:RATE       main sensor drift per device minute (kPa/min or fraction/min)
  offset:VALUE     main sensor offset from boot (kPa or fraction)
  brownout:MS      supply dip and reboot MS device ms after the first START
  ignore-limits    test only: firmware that acknowledges SET_LIMITS and ignores it
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad flag told in one line (not the usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _flag(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A parser whose refusal argparse prints as is (a ValueError would print as
    "invalid parse_speed value", naming our function instead of the rule)."""

    def parsed(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).partition(": ")[2] or str(exc)) from None

    parsed.__name__ = parse.__name__
    return parsed


def _number(span: Span) -> Callable[[str], float]:
    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got {text!r}, not a number") from None
        problem = span.complaint(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return number


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="acudevice-sim", description="Simulated acupressure wearables.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve a simulated device on a pty or TCP port",
        epilog=FAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="open a pseudo-terminal")
    where.add_argument("--tcp", type=int, metavar="PORT", help="listen on 127.0.0.1:PORT (0: any)")
    where.add_argument(
        "--ble",
        type=int,
        nargs="?",
        const=0,
        metavar="HCI_PORT",
        help="a BLE band on a virtual radio; hosts attach over HCI on 127.0.0.1 (docs/ble.md)",
    )
    serve.add_argument("--model", default=SimOptions.model, help="device model name")
    serve.add_argument("--seed", type=_flag(parse_seed), default=0, help="random seed (default 0)")
    serve.add_argument(
        "--speed",
        type=_flag(parse_speed),
        default=1,
        help=f"device seconds per wall second, a whole number {SPEED}, or 'max' (default 1)",
    )
    serve.add_argument(
        "--fault", action="append", default=[], metavar="SPEC", help=f"one of {FAULT_NAMES}"
    )
    serve.add_argument(
        "--battery",
        type=_number(BATTERY_PERCENT),
        default=100.0,
        help=f"initial charge, {BATTERY_PERCENT}".replace("%", "%%"),
    )
    serve.add_argument(
        "--uptime",
        type=_number(UPTIME_S),
        default=0.0,
        metavar="SECONDS",
        help=f"device time since power-on at start, {UPTIME_S} "
        "(4294967 is near the 32-bit ms wrap)",
    )
    serve.add_argument(
        "-v", "--verbose", action="store_true", help="log every frame in hex and decoded"
    )
    commands.add_parser("models", help="list the device models")
    campaign = commands.add_parser(
        "campaign",
        help="seeded sessions under every fault, checked on the true level (docs/simulator.md)",
    )
    campaign.add_argument("--runs", type=int, default=300, help="sessions to run (default 300)")
    campaign.add_argument(
        "--seed", type=_flag(parse_seed), default=0, help="first seed (default 0)"
    )
    campaign.add_argument("--json", action="store_true", help="print one JSON object")
    campaign.add_argument("--png", type=Path, metavar="FILE", help="write a PNG of the results")
    campaign.add_argument(
        "--jobs", type=int, default=16, help="sessions at once on one event loop (default 16)"
    )
    campaign.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="run only these simulator faults (repeatable), e.g. ignore-limits",
    )
    campaign.add_argument(
        "--action",
        action="append",
        default=[],
        metavar="NAME",
        help="run only these host actions (repeatable): none, comfort, cap-lowered, "
        "pause-storm, host-silence",
    )
    links = commands.add_parser(
        "link-campaign",
        help="bands running sessions through keepers while their links are cut (docs/simulator.md)",
    )
    links.add_argument(
        "--transport", choices=("ble", "pty", "tcp"), required=True, help="how bands are reached"
    )
    links.add_argument("--bands", type=int, default=4, help="bands at once (default 4)")
    links.add_argument(
        "--disconnects", type=int, default=200, help="links cut in all (default 200)"
    )
    links.add_argument(
        "--seed", type=_flag(parse_seed), default=0, help="plans the cuts (default 0)"
    )
    links.add_argument("--json", action="store_true", help="print one JSON object")
    core = commands.add_parser(
        "build-core", help="compile the core (simulator/core/) with mypyc (make install does it)"
    )
    core.add_argument("--force", action="store_true", help="rebuild even if up to date")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "models":
        for model in load_devices():
            print(f"{model.name}\t{model.actuator}\t{model.title}")
        return 0
    if args.command == "campaign":
        return _campaign(args)
    if args.command == "link-campaign":
        return _link_campaign(args)
    if args.command == "build-core":
        return _build_core(force=args.force)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        options = SimOptions(
            model=args.model,
            seed=args.seed,
            speed=args.speed,
            fault_specs=tuple(args.fault),
            battery=args.battery,
            uptime_s=args.uptime,
        )
        if args.ble is not None:
            return asyncio.run(_serve_ble(options, args.ble))
        return asyncio.run(_serve(options, pty=args.pty, tcp_port=args.tcp, verbose=args.verbose))
    except AcuDeviceError as exc:
        print(f"acudevice-sim: {exc}", file=sys.stderr)
        return 2


def _campaign(args: argparse.Namespace) -> int:
    from simulator import campaign_cli  # imports the host library: only when asked for

    try:
        return campaign_cli.run(
            runs=args.runs,
            seed=args.seed,
            as_json=args.json,
            png=args.png,
            jobs=args.jobs,
            faults=args.fault,
            actions=args.action,
        )
    except AcuDeviceError as exc:
        print(f"acudevice-sim campaign: {exc}", file=sys.stderr)
        return 2


def _link_campaign(args: argparse.Namespace) -> int:
    from simulator import link_campaign_cli  # imports the host library: only when asked for

    try:
        return link_campaign_cli.run(
            transport=args.transport,
            bands=args.bands,
            disconnects=args.disconnects,
            seed=args.seed,
            as_json=args.json,
        )
    except AcuDeviceError as exc:
        print(f"acudevice-sim link-campaign: {exc}", file=sys.stderr)
        return 2


def _build_core(*, force: bool) -> int:
    from simulator import compiled

    try:
        where = compiled.build(force=force)
    except compiled.CoreBuildError as exc:
        print(f"acudevice-sim build-core: {exc}", file=sys.stderr)
        return 1
    print(f"acudevice-sim: compiled the core in {where}")
    return 0


async def _serve(options: SimOptions, *, pty: bool, tcp_port: int | None, verbose: bool) -> int:
    sim = Simulation(options)
    server: PtyServer | TcpServer
    if pty:
        server = PtyServer(sim, verbose=verbose)
        where = f"serial://{await server.start()}"  # a URL `acudevice` takes as it is
    else:
        assert tcp_port is not None
        server = TcpServer(sim, port=tcp_port, verbose=verbose)
        where = f"tcp://127.0.0.1:{await server.start()}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"acudevice-sim: serving {options.model} on {where}", flush=True)
    await stop.wait()
    log.info("stopping: venting first (%s)", _level(sim, sim.device.true_level))
    report = sim.vent_for_shutdown()
    log.info("vented to %s in %.1f s of device time", _level(sim, report.after), report.device_s)
    await server.close()
    await sim.stop()
    return 0


async def _serve_ble(options: SimOptions, port: int) -> int:
    from simulator.ble_serve import serve_ble

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    return await serve_ble(options, port=port, stop=stop)


def _level(sim: Simulation, level: float) -> str:
    if sim.device.model.actuator == "pressure":
        return f"{level / 1000:.2f} kPa"
    return f"intensity {level / 1000:.2f}"

"""`acudevice run`: a program on a band, with a live view, journalled."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live

from acudevice.cli.check import print_verdict
from acudevice.cli.common import (
    CAP_KPA,
    EXIT_BAD_INPUT,
    build_profile,
    default_device,
    err,
    out,
    reports_errors,
    shell_command,
    styled,
)
from acudevice.cli.gentler import (
    AtComfortOption,
    AtHalvedCapOption,
    SideOption,
    adjusted,
    offers,
)
from acudevice.cli.live import PlainProgress, keys_to, render
from acudevice.errors import InputError, NotFoundError, Problem
from acudevice.plan.devices import PressureDevice, VibrationDevice, format_level
from acudevice.plan.library import ProgramLibrary, load_device
from acudevice.plan.program import Program
from acudevice.safety.fitting import Adjustment
from acudevice.safety.profile import HealthProfile
from acudevice.safety.screening import comfort_level
from acudevice.session.model import SessionResult
from acudevice.session.runner import LinkPolicy, Session
from acudevice.session.verdict import remembered_profile
from acudevice.session.view import SessionView
from acudevice.store import Journal, check_participant
from acudevice.store.journal import JournalError

DEFAULT_DEVICE = "sim://"
log = logging.getLogger("acudevice.cli")


def _rating(value: int | None, option: str) -> int | None:
    if value is not None and not 0 <= value <= 10:
        raise InputError([Problem(option, "", f"a rating is 0 (none) to 10 (worst), got {value}")])
    return value


EXIT_ENDED_EARLY = 1
_SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP (terminal closed)"}


async def _run_session(session: Session, *, live: bool, caught: list[int]) -> SessionResult:
    """Run with SIGTERM and SIGHUP ending the session as Ctrl-C does: it vents first."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        caught.append(signum)
        session.cancel(f"cancelled ({_SIGNALS[signal.Signals(signum)]})")

    for signum in _SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        if not live:
            return await session.run()
        with Live(console=out, refresh_per_second=8, transient=False) as view_live:
            SessionView.follow(session, lambda view: view_live.update(render(view)))
            with keys_to(session.command):
                return await session.run()
    finally:
        for signum in _SIGNALS:
            loop.remove_signal_handler(signum)


def _say(message: str) -> None:
    """One line on stderr; after SIGHUP the terminal may be gone, which must not matter."""
    with contextlib.suppress(OSError, ValueError):
        err.print(message, soft_wrap=True)


def _simulator_banner(device: str | None, both: str | None) -> None:
    """Say plainly when a band is simulated; suggest --device only if none was given."""
    simulated = [u for u in (device or DEFAULT_DEVICE, both) if u and u.startswith("sim://")]
    if not simulated:
        return
    listed = ", ".join(simulated)
    hint = "; pass --device URL to drive hardware" if device is None else ""
    err.print(
        styled(("SIMULATOR", "bold yellow"), f": {listed} is a simulated band, not hardware{hint}.")
    )


def _model_named(name: str, program: Program) -> PressureDevice | VibrationDevice:
    """The band's model as screening saw it (a model we do not ship: the default)."""
    try:
        return load_device(name)
    except NotFoundError:
        return default_device(program, None)


def _comfort_max(
    program: Program,
    library: ProgramLibrary,
    profile: HealthProfile,
    journal: Journal,
    participant: str | None,
) -> float | None:
    """The comfortable maximum that counts for the program's points now (the journal's,
    this session's "too strong" included, and the profile's), in kPa or 0-1."""
    merged = remembered_profile(profile, journal, program.actuator, participant=participant)
    level = comfort_level(program, library.catalog, merged)
    return None if level is None else level / 1000


def summary_line(result: SessionResult) -> str:
    """The last line of a run: how it ended, the peak, and the cap it ended with, saying what
    lowered it as the live view did."""

    def level(value: int) -> str:
        return format_level(value, result.actuator)

    cap = f"cap {level(result.cap_level)}"
    if result.cap_level < result.screened_cap_level:
        cause = "too strong" if result.comfort_level == result.cap_level else "intensity"
        cap += f", lowered from {level(result.screened_cap_level)} by {cause}"
    skew = "" if result.start_skew_ms is None else f", start skew {result.start_skew_ms:.1f} ms"
    return (
        f"session {result.session_id}: {result.outcome} — {result.detail or ''}; "
        f"{result.repeats_done}/{result.repeats_planned} repeats, peak "
        f"{level(result.peak_level)} ({cap}){skew}"
    )


def ask_rating() -> int | None:
    """After an interactive session: the symptom now, 0-10, or nothing."""
    question = "How are your symptoms now, 0 (none) to 10 (worst)? Enter skips: "
    for _ in range(3):
        try:
            answer = out.input(question).strip()
        except EOFError:
            return None
        if not answer:
            return None
        if answer.isdigit() and 0 <= int(answer) <= 10:
            return int(answer)
        out.print(f"{answer!r} is not a whole number from 0 to 10")
    return None


@reports_errors
def run(
    program_name: Annotated[
        str, typer.Argument(metavar="PROGRAM", help="program name or .toml file")
    ],
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            metavar="URL",
            help=f"device URL or paired alias [default: {DEFAULT_DEVICE}]",
        ),
    ] = None,
    both: Annotated[
        str | None, typer.Option("--both", metavar="URL2", help="second band, started together")
    ] = None,
    cap_kpa: Annotated[
        float | None, typer.Option("--cap-kpa", metavar="KPA", help=f"your personal cap, {CAP_KPA}")
    ] = None,
    pregnant: Annotated[bool, typer.Option("--pregnant")] = False,
    profile_file: Annotated[
        Path | None,
        typer.Option("--profile", metavar="FILE", help="health profile (acudevice profile init)"),
    ] = None,
    confirm: Annotated[
        str | None,
        typer.Option(
            "--confirm", metavar="REASON", help="confirm soft limits, with a reason (full peak)"
        ),
    ] = None,
    side: SideOption = None,
    at_comfort: AtComfortOption = False,
    at_halved_cap: AtHalvedCapOption = False,
    rate_before: Annotated[
        int | None, typer.Option("--rate-before", metavar="0-10", help="symptom now, 10 worst")
    ] = None,
    rate_after: Annotated[
        int | None,
        typer.Option("--rate-after", metavar="0-10", help="symptom after (asked when interactive)"),
    ] = None,
    end_on_link_loss: Annotated[
        bool, typer.Option("--end-on-link-loss", help="end instead of reconnecting")
    ] = False,
    participant: Annotated[
        str | None,
        typer.Option(
            "--participant", metavar="ID", help="study pseudonym of who wears the band (journalled)"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print a machine-readable summary")
    ] = False,
) -> None:
    """Run a program; Ctrl-C stops and vents before exiting.

    Past a comfortable maximum or a bleeding risk, --at-comfort or --at-halved-cap runs the
    program scaled under it (screened again, no confirmation); --confirm runs it at its
    full peak. A refusal lists every way forward that passes.

    Exit codes: 0 completed or stopped by you; 1 ended early (safety alarm, ESTOP, lost
    link, journal or host failure); 2 bad input, refused or needs confirmation; 129 SIGHUP,
    130 Ctrl-C, 143 SIGTERM. Every way out tells the band to vent first.
    """
    _rating(rate_before, "--rate-before")
    _rating(rate_after, "--rate-after")
    if participant is not None:
        check_participant(participant, "--participant")
    library = ProgramLibrary()
    program = library.get(program_name)
    profile = build_profile(profile_file, pregnant=pregnant, cap_kpa=cap_kpa)
    adjustment = Adjustment(side, at_comfort, at_halved_cap)
    if side is not None and both:
        raise InputError([Problem("--side", "", "one side is one band: drop --both")])
    url = device or DEFAULT_DEVICE
    urls = [url] + ([both] if both else [])
    live = sys.stdout.isatty() and not as_json
    progress = None if as_json else PlainProgress(out.print)
    with Journal() as journal:
        journal.check_writable()  # before any band is touched
        if participant is not None and journal.has_withdrawn(participant):
            raise InputError(
                [Problem("--participant", "", f"{participant} has withdrawn from the study")]
            )
        if not as_json:
            _simulator_banner(device, both)
        fitted = adjusted(
            program,
            default_device(program, None),
            library,
            profile,
            journal,
            adjustment,
            participant=participant,
        )
        if fitted.notes and not as_json:
            out.print(f"adjusted: {'; '.join(fitted.notes)}", soft_wrap=True)
        session = Session(
            fitted.program,
            urls,
            profile=profile,
            confirm_reason=confirm,
            journal=journal,
            catalog=library.catalog,
            rating_before=rate_before,
            link=LinkPolicy(end_on_link_loss=end_on_link_loss),
            participant=participant,
        )
        if progress is not None and not live:
            SessionView.follow(session, progress)
        caught: list[int] = []
        try:
            result = asyncio.run(_run_session(session, live=live, caught=caught))
        except KeyboardInterrupt:
            _say("stopped: the band was told to vent; the session is recorded as stopped")
            raise typer.Exit(128 + signal.SIGINT) from None
        except Exception as exc:
            log.debug("host failure", exc_info=True)
            _say(f"error: host failure ({type(exc).__name__}: {exc}); the band was told to vent")
            raise typer.Exit(EXIT_ENDED_EARLY) from None
        if caught:
            signum = caught[0]
            _say(
                f"stopped by {signal.Signals(signum).name}: the band was told to vent; "
                "the session is recorded as stopped"
            )
            raise typer.Exit(128 + signum)
        if result.refused and result.verdict is not None:
            model = _model_named(result.verdict.device, program)
            ways = offers(
                program,
                model,
                library,
                profile,
                journal,
                adjustment,
                confirm,
                participant=participant,
            )
            print_verdict(result.verdict, program.actuator, ways=ways, adjusted_as=fitted.notes)
            raise typer.Exit(EXIT_BAD_INPUT)
        if result.error is not None and result.session_id is None:
            raise result.error  # never started: the error says why (exit 2)
        if isinstance(result.error, JournalError):
            _say(f"error: {result.error}; the band was told to vent")
            raise typer.Exit(EXIT_ENDED_EARLY)
        if progress is not None and not live:
            progress.finish()
        if rate_after is None and live and sys.stdin.isatty():
            rate_after = ask_rating()
        if rate_after is not None and result.session_id is not None:
            journal.rate_after(result.session_id, rate_after)
        comfort_max = _comfort_max(program, library, profile, journal, participant)
    if as_json:
        summary = result.as_json()
        unit = "kpa" if program.actuator == "pressure" else "intensity"
        summary[f"comfort_max_{unit}"] = comfort_max  # remembered for the point, not only now
        summary["adjusted"] = list(fitted.notes)
        typer.echo(json.dumps(summary))
    else:
        out.print(summary_line(result))
        if result.session_id is not None:
            report = ("report", str(result.session_id), "-o", f"session-{result.session_id}.png")
            out.print(f"report: {shell_command(*report)}")
    if result.outcome not in ("completed", "stopped"):
        raise typer.Exit(EXIT_ENDED_EARLY)

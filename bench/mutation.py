"""A mutation campaign over the safety code: does the suite catch plausible bugs?

Each mutant is one plausible slip (a flipped comparison, an off-by-one, a dropped check, min
for max, a skipped branch) in the code that keeps a person safe. Mutants are applied one at
a time, in a detached git worktree of HEAD (the checkout you work in is never touched), and
run against the tests that should catch them; a mutant in the simulator's core runs in both
modes, pure and compiled (a build per mutant). A mutant is *killed* when those tests fail,
*survives* when they pass. Survivors are listed; a test belongs to each one that is not
equivalent to the original (docs/safety.md, "Mutation campaign", keeps the judgements).

    .venv/bin/python bench/mutation.py            # every mutant (about 20-40 min on 2 cores)
    .venv/bin/python bench/mutation.py --only cap  # mutants whose name contains "cap"
    .venv/bin/python bench/mutation.py --list
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PER_MUTANT_S = 600


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]
    simulator: bool = False
    """In the simulator's core: run pure and compiled."""


@dataclass
class Outcome:
    mutant: Mutant
    modes: dict[str, str] = field(default_factory=dict)
    """mode -> killed | survived | timeout | error"""
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        return any(v in ("killed", "timeout") for v in self.modes.values())


SESSION = (
    "tests/test_session_monitor.py",
    "tests/test_session_sim.py",
    "tests/test_safety_pins.py",
)
CAP = ("tests/test_session_cap.py", "tests/test_too_strong.py", "tests/test_session_intensity.py")
SCREEN = (
    "tests/test_safety_envelope.py",
    "tests/test_compiler.py",
    "tests/test_verdict_agreement.py",
    "tests/test_safety_pins.py",
)
LINK = ("tests/test_session_sim.py", "tests/test_safety_pins.py", "tests/test_host_exits.py")
BRIDGE = (
    "tests/test_bridge_commands.py",
    "tests/test_bridge_stop.py",
    "tests/test_bridge_outages.py",
)
FIRMWARE = (
    "tests/test_sim_firmware.py",
    "tests/test_sim_faults.py",
    "tests/test_sim_stopping.py",
    "tests/test_single_fault.py",
    "tests/test_sim_contract.py",
)

MUTANTS: tuple[Mutant, ...] = (
    # ---- the host's monitor (acudevice/session/monitor.py)
    Mutant(
        "monitor: over-pressure ignores the tolerance",
        "acudevice/session/monitor.py",
        "if measured > (descending_from or self.cap_level) + tolerance:",
        "if measured > (descending_from or self.cap_level) + tolerance * 2:",
        SESSION,
    ),
    Mutant(
        "monitor: over-pressure never fires",
        "acudevice/session/monitor.py",
        "if measured > (descending_from or self.cap_level) + tolerance:",
        "if False:",
        SESSION,
    ),
    Mutant(
        "monitor: a FAULT state is not an alarm",
        "acudevice/session/monitor.py",
        "if state == _FAULT:",
        "if state == _FAULT and False:",
        SESSION,
    ),
    Mutant(
        "monitor: low battery off by a lot",
        "acudevice/session/monitor.py",
        "if sample.battery_percent < LOW_BATTERY_ABORT_PERCENT:",
        "if sample.battery_percent < LOW_BATTERY_ABORT_PERCENT - 5:",
        SESSION,
    ),
    Mutant(
        "monitor: rising during release never fires",
        "acudevice/session/monitor.py",
        "if measured > floor + tolerance:",
        "if measured > floor + tolerance * 100:",
        SESSION,
    ),
    Mutant(
        "monitor: a lowered cap is never enforced (no ease-off alarm)",
        "acudevice/session/monitor.py",
        "elif (sample.t_ms - self._descending_since_ms) % 2**32 > self.ease_off_ms:",
        "elif False:",
        SESSION,
    ),
    Mutant(
        "monitor: lower_cap may raise the cap",
        "acudevice/session/monitor.py",
        "if level < self.cap_level:",
        "if True:",
        SESSION + CAP,
    ),
    # ---- the session's one cap (acudevice/session/cap.py)
    Mutant(
        "cap: too strong keeps 100 % instead of 70 %",
        "acudevice/session/cap.py",
        "TOO_STRONG_FACTOR = 0.7",
        "TOO_STRONG_FACTOR = 1.0",
        CAP,
    ),
    Mutant(
        "cap: too strong may land above what was felt (max for min)",
        "acudevice/session/cap.py",
        "return max(min(int(felt * TOO_STRONG_FACTOR), self.current - 1), 1)",
        "return max(max(int(felt * TOO_STRONG_FACTOR), self.current - 1), 1)",
        CAP,
    ),
    Mutant(
        "cap: lowering accepts a higher level",
        "acudevice/session/cap.py",
        "if cause is CapCause.SCREENED or not 0 < level < previous:",
        "if cause is CapCause.SCREENED or not 0 < level:",
        CAP,
    ),
    Mutant(
        "cap: current is the highest term, not the lowest",
        "acudevice/session/cap.py",
        "return min(self.screened, self.comfort or self.screened, self.intensity or self.screened)",
        "return max(self.screened, self.comfort or self.screened, self.intensity or self.screened)",
        CAP,
    ),
    # ---- the watch loop (acudevice/session/watching.py)
    Mutant(
        "watch: an alarm does not vent",
        "acudevice/session/watching.py",
        "        await self.bands.vent()\n        self.session.record.fault(channel, alarm.code, alarm.message)",
        "        self.session.record.fault(channel, alarm.code, alarm.message)",
        SESSION,
    ),
    Mutant(
        "watch: a silent link is never treated as lost",
        "acudevice/session/watching.py",
        "if i not in done and now() - seen > STALL_S:",
        "if False:",
        LINK,
    ),
    Mutant(
        "watch: samples from a replaced link are not dropped",
        "acudevice/session/watching.py",
        "                if entry.generation != bands.generation:\n                    continue  # from a link we have already replaced",
        "                pass",
        LINK,
    ),
    Mutant(
        "watch: a band stopped mid-program is taken as done",
        "acudevice/session/watching.py",
        "        if monitor.reached_last_segment:",
        "        if True:",
        SESSION,
    ),
    Mutant(
        "watch: after a reconnect the repeat restarts without waiting for the vent",
        "acudevice/session/watching.py",
        "        await bands.wait_vented()\n        remaining",
        "        remaining",
        LINK,
    ),
    Mutant(
        "watch: too strong sets the new cap on the monitors but not on the band",
        "acudevice/session/watching.py",
        "        await self.bands.set_cap(level)\n        if session.lower_cap",
        "        if session.lower_cap",
        CAP,
    ),
    Mutant(
        "watch: the per-session loss budget is never spent",
        "acudevice/session/watching.py",
        "        self._losses += 1",
        "        self._losses += 0",
        LINK,
    ),
    # ---- the device (acudevice/device/)
    Mutant(
        "device: a schedule above its cap is not refused on the host",
        "acudevice/device/loading.py",
        "if schedule.peak_level > schedule.cap_level:",
        "if schedule.peak_level > schedule.cap_level * 2:",
        ("tests/test_session_sim.py", "tests/test_safety_pins.py"),
    ),
    Mutant(
        "device: too steep off by one",
        "acudevice/device/loading.py",
        "return change * 1000 > ramp_limit_per_s * segment.duration_ms",
        "return change * 1000 > ramp_limit_per_s * segment.duration_ms * 2",
        ("tests/test_session_sim.py", "tests/test_safety_pins.py"),
    ),
    Mutant(
        "device: leaving after an error stops gently instead of venting",
        "acudevice/device/device.py",
        "        if vent:\n            await self.estop()",
        "        if False:\n            await self.estop()",
        ("tests/test_keeper.py", "tests/test_host_exits.py", "tests/test_safety_pins.py"),
    ),
    Mutant(
        "device: a silent link is never closed",
        "acudevice/device/device.py",
        "                if misses >= SILENT_AFTER:",
        "                if misses >= SILENT_AFTER * 1000:",
        ("tests/test_keeper.py",),
    ),
    Mutant(
        "keeper: a lease left by an error does not vent",
        "acudevice/device/keeper.py",
        "            yield device\n            vent = False",
        "            vent = False\n            yield device",
        ("tests/test_keeper.py", "tests/test_safety_pins.py"),
    ),
    Mutant(
        "keeper: two leases at once",
        "acudevice/device/keeper.py",
        "        if self._leased:\n            raise BandBusy",
        "        if False:\n            raise BandBusy",
        ("tests/test_keeper.py",),
    ),
    # ---- screening and the envelope (acudevice/safety/)
    Mutant(
        "limits: the envelope is the highest term",
        "acudevice/safety/limits.py",
        "        return min(t.level for t in self.terms)",
        "        return max(t.level for t in self.terms)",
        SCREEN,
    ),
    Mutant(
        "limits: a sensitive site is not halved",
        "acudevice/safety/limits.py",
        "level=int(base * SENSITIVE_SITE_FACTOR),",
        "level=int(base),",
        SCREEN,
    ),
    Mutant(
        "compiler: a ramp above the cap is not refused",
        "acudevice/safety/compiler.py",
        "if target > cap and phase.kind in (PhaseKind.RAMP, PhaseKind.RELEASE):",
        "if target > cap * 2 and phase.kind in (PhaseKind.RAMP, PhaseKind.RELEASE):",
        SCREEN,
    ),
    Mutant(
        "compiler: a repeat may end at pressure",
        "acudevice/safety/compiler.py",
        "        if limits.vent_level is not None and level >= limits.vent_level:\n            refuse(\n                RuleId.VENT_BETWEEN_REPEATS,",
        "        if False:\n            refuse(\n                RuleId.VENT_BETWEEN_REPEATS,",
        SCREEN,
    ),
    Mutant(
        "screening: a personal cap may raise the default",
        "acudevice/safety/screening.py",
        "if user_cap is not None and user_cap > device.default_user_cap_level:",
        "if user_cap is not None and user_cap > device.default_user_cap_level * 2:",
        SCREEN,
    ),
    Mutant(
        "screening: pregnancy points are not refused",
        "acudevice/safety/screening.py",
        "if profile.pregnant and point.pregnancy_avoid:",
        "if profile.pregnant and point.pregnancy_avoid and False:",
        (*SCREEN, "tests/test_cli_plan.py"),
    ),
    Mutant(
        "screening: a remembered comfort maximum is ignored",
        "acudevice/safety/screening.py",
        "if limits.comfort_level is not None and schedule.peak_level > limits.comfort_level:",
        "if False:",
        (*SCREEN, "tests/test_session_sim.py"),
    ),
    # ---- the bridge's command guards (acudevice/bridge/)
    Mutant(
        "commands: a retained command runs",
        "acudevice/bridge/commands.py",
        "        if retained:\n            return self._result(",
        "        if False:\n            return self._result(",
        (*BRIDGE, "tests/test_bridge_intensity.py"),
    ),
    Mutant(
        "commands: a stop reusing an id is answered from memory",
        "acudevice/bridge/commands.py",
        'if request_id is None or verb in ("stop", "estop"):',
        "if request_id is None:",
        BRIDGE,
    ),
    Mutant(
        "commands: a stale start is accepted",
        "acudevice/bridge/commands.py",
        "        if age > self.max_age_s:",
        "        if age > self.max_age_s * 100:",
        BRIDGE,
    ),
    Mutant(
        "slot: the broker grace never stops a remote session",
        "acudevice/bridge/band_session.py",
        "        if self.session is session and not self.broker_up:",
        "        if False:",
        BRIDGE,
    ),
    Mutant(
        "admission: a stop waits in the rate-limited queue",
        "acudevice/bridge/admission.py",
        '_BYPASS = frozenset({"stop", "estop"})',
        '_BYPASS = frozenset({"estop"})',
        ("tests/test_bridge_admission.py", "tests/test_bridge_stop.py"),
    ),
    Mutant(
        "intensity: a level above 100 % is accepted",
        "acudevice/session/runner.py",
        "        if not 1 <= percent <= 100:",
        "        if not 1 <= percent <= 1000:",
        (*CAP, "tests/test_bridge_intensity.py"),
    ),
    # ---- the simulated firmware (simulator/core/): both modes
    Mutant(
        "firmware: the watchdog never fires",
        "simulator/core/supervisor.py",
        "            and wall - fw.last_request_wall > WATCHDOG_S",
        "            and wall - fw.last_request_wall > WATCHDOG_S * 1000",
        FIRMWARE,
        simulator=True,
    ),
    Mutant(
        "firmware: over-pressure is not a fault",
        "simulator/core/supervisor.py",
        "        if highest > self.over_level.limit:",
        "        if highest > self.over_level.limit * 2:",
        FIRMWARE,
        simulator=True,
    ),
    Mutant(
        "firmware: SET_LIMITS may raise the cap in a session",
        "simulator/core/requests.py",
        "    if in_session and request.cap_level > fw.active_cap:",
        "    if False:",
        FIRMWARE,
        simulator=True,
    ),
    Mutant(
        "firmware: a segment above the cap is loaded",
        "simulator/core/upload.py",
        "    if level > cap:",
        "    if level > cap * 2:",
        FIRMWARE,
        simulator=True,
    ),
    Mutant(
        "firmware: the trip margin is not taken off the limit",
        "simulator/core/monitors.py",
        "            self.limit = limit + self.tolerance - self._margin(limit)",
        "            self.limit = limit + self.tolerance",
        (*FIRMWARE, "tests/test_campaign.py"),
        simulator=True,
    ),
    Mutant(
        "firmware: the check sensor's higher reading is ignored",
        "simulator/core/supervisor.py",
        "            if check > measured:\n                highest = check",
        "            if False:\n                highest = check",
        (*FIRMWARE, "tests/test_campaign.py"),
        simulator=True,
    ),
    Mutant(
        "firmware: sensors that disagree are never a fault",
        "simulator/core/monitors.py",
        "        if now_ms - self._since_ms >= self.PERSIST_MS:",
        "        if False:",
        FIRMWARE,
        simulator=True,
    ),
    Mutant(
        "firmware: a valve stuck shut is never seen",
        "simulator/core/monitors.py",
        "        if level0 >= self.min_level and level0 - measured < level0 * self.MIN_FALL:",
        "        if False:",
        FIRMWARE,
        simulator=True,
    ),
    Mutant(
        "firmware: a stuck pump (rise while undriven) is never seen",
        "simulator/core/monitors.py",
        "samples[-1] - samples[0] > self.threshold:",
        "samples[-1] - samples[0] > self.threshold * 100:",
        FIRMWARE,
        simulator=True,
    ),
    Mutant(
        "firmware: a vent that never ends is not a fault",
        "simulator/core/supervisor.py",
        "            if overdue and measured >= self._vented_level:",
        "            if False:",
        FIRMWARE,
        simulator=True,
    ),
    Mutant(
        "firmware: STOP clears a fault of the hardware",
        "simulator/core/supervisor.py",
        "        if fw.fault in _NEEDS_SERVICE:\n            return False",
        "        if False:\n            return False",
        FIRMWARE,
        simulator=True,
    ),
)


@contextlib.contextmanager
def scratch_checkout() -> Iterator[Path]:
    """A detached worktree of HEAD: the mutants never touch the checkout you work in."""
    where = Path(tempfile.mkdtemp(prefix="acudevice-mutants-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(where / "tree"), "HEAD"],
        cwd=ROOT,
        check=True,
    )
    try:
        yield where / "tree"
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where / "tree")], cwd=ROOT)
        shutil.rmtree(where, ignore_errors=True)


def run_tests(tree: Path, tests: tuple[str, ...], *, pure: bool) -> str:
    """killed | survived | timeout, for one mode."""
    env = {**os.environ, "PYTHONPATH": str(tree), "CI": "1"}
    env.pop("ACUDEVICE_SIM_PURE", None)
    if pure:
        env["ACUDEVICE_SIM_PURE"] = "1"
    present = [t for t in tests if (tree / t).exists()]
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *present]
    try:
        done = subprocess.run(
            command, cwd=tree, env=env, capture_output=True, timeout=PER_MUTANT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    return "survived" if done.returncode == 0 else "killed"


def build_core(tree: Path) -> bool:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("ACUDEVICE_SIM_PURE", None)
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "build-core"],
        cwd=tree,
        env=env,
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def apply(tree: Path, mutant: Mutant) -> str:
    path = tree / mutant.path
    text = path.read_text()
    count = text.count(mutant.before)
    if count != 1:
        raise SystemExit(
            f"mutant {mutant.name!r}: the original text occurs {count} times in {mutant.path}; "
            "update bench/mutation.py to the code as it is now"
        )
    path.write_text(text.replace(mutant.before, mutant.after))
    return text


def campaign(mutants: list[Mutant], progress: bool) -> list[Outcome]:
    outcomes = []
    with scratch_checkout() as tree:
        for i, mutant in enumerate(mutants, 1):
            started = time.perf_counter()
            original = apply(tree, mutant)
            outcome = Outcome(mutant)
            try:
                outcome.modes["pure" if mutant.simulator else "host"] = run_tests(
                    tree, mutant.tests, pure=mutant.simulator
                )
                if mutant.simulator:
                    outcome.modes["compiled"] = (
                        run_tests(tree, mutant.tests, pure=False) if build_core(tree) else "error"
                    )
            finally:
                (tree / mutant.path).write_text(original)
            outcome.seconds = time.perf_counter() - started
            outcomes.append(outcome)
            if progress:
                verdict = "killed" if outcome.killed else "SURVIVED"
                modes = ", ".join(f"{k} {v}" for k, v in outcome.modes.items())
                print(
                    f"[{i}/{len(mutants)}] {verdict:8} {mutant.name} ({modes}, {outcome.seconds:.0f} s)"
                )
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="mutants whose name contains this text")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--check", action="store_true", help="only check every mutant applies to the code as it is"
    )
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or args.only in m.name]
    if args.check:
        stale = [
            f"{m.name}: {m.path}"
            for m in chosen
            if (ROOT / m.path).read_text().count(m.before) != 1
        ]
        stale += [
            f"{m.name}: no test file {t}"
            for m in chosen
            for t in m.tests
            if not (ROOT / t).exists()
        ]
        print("\n".join(stale) or f"all {len(chosen)} mutants apply")
        return 1 if stale else 0
    if args.list:
        for m in chosen:
            print(f"{m.name}  [{m.path}]")
        return 0
    outcomes = campaign(chosen, progress=not args.json)
    killed = sum(o.killed for o in outcomes)
    survivors = [o.mutant.name for o in outcomes if not o.killed]
    figures = {
        "mutants": len(outcomes),
        "killed": killed,
        "score": round(killed / len(outcomes), 3) if outcomes else None,
        "survivors": survivors,
        "modes": {o.mutant.name: o.modes for o in outcomes},
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(
            f"\nscore: {killed}/{len(outcomes)} killed ({100 * killed / max(len(outcomes), 1):.0f} %)"
        )
        for name in survivors:
            print(f"  survived: {name}")
    return 0 if not survivors else 1


if __name__ == "__main__":
    raise SystemExit(main())

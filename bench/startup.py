"""How long the CLI and the library take to start, against baselines measured in the same run.

    .venv/bin/python bench/startup.py [runs]

Whole processes, alternated command by command so machine drift hits all alike; the median
of each (default 15 runs) and the peak RSS of each process (from wait4). Baselines: `python -c
pass`, and a bare typer app with the same settings and as many commands as ours.
Goals (issue 9): `acudevice --help` <= 100 ms and <= 1.2x the bare typer app; `import
acudevice` <= 30 ms above `python -c pass`; `--help` peak RSS <= 45 MB.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_APP = '''
import typer
app = typer.Typer(name="bare", help="A bare app.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False, rich_markup_mode=None)
for _name in ("programs", "check", "run", "history", "report", "scan", "pair", "devices",
              "conformance"):
    def _command(program: str = typer.Argument("x", help="a program")) -> None:
        """One line of help."""
    app.command(_name)(_command)
@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="print the version")) -> None:
    pass
app(prog_name="bare")
'''


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS in MB of one whole process."""
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{argv} exited {proc.returncode}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE_APP)
        env = {**os.environ, "ACUDEVICE_HOME": tmp}
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import acudevice'": [sys.executable, "-c", "import acudevice"],
            "bare typer app --help": [sys.executable, str(bare), "--help"],
            "acudevice --help": [str(bin_dir / "acudevice"), "--help"],
            "acudevice programs list": [str(bin_dir / "acudevice"), "programs", "list"],
        }
        walls: dict[str, list[float]] = {name: [] for name in commands}
        rss: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # warm the file cache once
            run_once(argv, env)
        for _ in range(runs):
            for name, argv in commands.items():
                wall, peak = run_once(argv, env)
                walls[name].append(wall)
                rss[name].append(peak)
    median = {name: statistics.median(values) * 1000 for name, values in walls.items()}
    print(f"{'command':34} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'peak RSS MB':>12}")
    for name in commands:
        print(
            f"{name:34} {median[name]:10.1f} {min(walls[name]) * 1000:8.1f} "
            f"{max(walls[name]) * 1000:8.1f} {max(rss[name]):12.1f}"
        )
    help_ratio = statistics.median(
        a / b
        for a, b in zip(walls["acudevice --help"], walls["bare typer app --help"], strict=True)
    )
    import_cost = median["python -c 'import acudevice'"] - median["python -c pass"]
    print(f"\nacudevice --help / bare typer app (median of paired ratios): {help_ratio:.2f}x")
    print(f"import acudevice above python -c pass: {import_cost:.1f} ms")
    print(f"acudevice --help peak RSS: {max(rss['acudevice --help']):.1f} MB")


if __name__ == "__main__":
    main()

"""Start-up stays light: the CLI and `import acudevice` load no BLE stack and no plotting.

An import check in a fresh interpreter, not a timing: bench/startup.py measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

HEAVY = ("bumble", "bleak", "matplotlib", "numpy", "aiomqtt", "serial", "asyncpg")

_PROBE = """
import json, sys
argv = {argv!r}
if argv is None:
    import acudevice
else:
    from acudevice.cli.main import main
    sys.argv = ["acudevice", *argv]
    try:
        main()
    except SystemExit:
        pass
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})), file=sys.stderr)
"""


def loaded_after(argv: list[str] | None, home: Path) -> tuple[set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=argv)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"ACUDEVICE_HOME": str(home), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    modules = json.loads(done.stderr.strip().splitlines()[-1])
    return set(modules), done.stdout


@pytest.mark.parametrize(
    "argv", [None, ["--help"], ["programs", "list"], ["devices"], ["run", "--help"]]
)
def test_no_heavy_library_is_loaded(argv: list[str] | None, tmp_path: Path) -> None:
    modules, _ = loaded_after(argv, tmp_path)
    assert modules & set(HEAVY) == set()


def test_help_loads_no_command_module_yet_lists_every_command(tmp_path: Path) -> None:
    from acudevice.cli.main import COMMANDS

    modules, shown = loaded_after(["--help"], tmp_path)
    assert "pydantic" not in modules and "rich" not in modules
    for name in COMMANDS:
        assert f"  {name} " in shown


def test_every_listed_command_loads_and_has_help(tmp_path: Path) -> None:
    """The lazy table and the modules cannot drift apart (typer's group hooks still work)."""
    from acudevice.cli.main import COMMANDS, load_command

    for name in COMMANDS:
        command = load_command(name)
        assert command.name == name
        assert command.help or command.callback.__doc__  # type: ignore[union-attr]
        assert "install_completion" not in {p.name for p in command.params}, name

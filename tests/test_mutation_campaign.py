"""The mutation campaign (`make mutation`) still fits the code: a refactor that moves a
guarded line must move its mutant too, or the campaign would silently test nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_mutant_applies_to_the_code_as_it_is_and_names_existing_tests() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "mutation.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("all ") and "mutants apply" in done.stdout


def test_a_mutant_whose_line_is_gone_is_reported(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import mutation
    finally:
        sys.path.remove(str(ROOT / "bench"))
    mutant = mutation.MUTANTS[0]
    copy = tmp_path / "tree"
    (copy / Path(mutant.path).parent).mkdir(parents=True)
    (copy / mutant.path).write_text("nothing to mutate here\n")
    try:
        mutation.apply(copy, mutant)
    except SystemExit as refused:
        assert "occurs 0 times" in str(refused) and mutant.path in str(refused)
    else:
        raise AssertionError("a stale mutant was applied")

"""Where shipped profiles and per-user files live.

`ACUDEVICE_HOME` overrides the per-user directories (tests, kiosks, several users on one
gateway); otherwise platformdirs picks the platform's usual places.
"""

from __future__ import annotations

import os
import stat
import sys
from functools import cache
from pathlib import Path

import platformdirs

APP = "acudevice"


@cache
def shipped_profiles_dir() -> Path:
    """`profiles/` from the wheel, or from the source tree in a development install.

    Looked up once: where the package lies does not change while it runs."""
    packaged = Path(__file__).parent / "_profiles"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "profiles"


def user_config_dir() -> Path:
    home = os.environ.get("ACUDEVICE_HOME")
    if home:
        return Path(home) / "config"
    return Path(platformdirs.user_config_dir(APP))


def user_data_dir() -> Path:
    home = os.environ.get("ACUDEVICE_HOME")
    if home:
        return Path(home) / "data"
    return Path(platformdirs.user_data_dir(APP))


def user_programs_dir() -> Path:
    return user_config_dir() / "programs"


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def _ours(directory: Path, root: Path) -> bool:
    """A directory acudevice makes for itself: `root`, or ACUDEVICE_HOME and what is under it.
    The parents of platformdirs' directories (~/.local/share) are the system's, not ours."""
    if directory == root:
        return True
    home = os.environ.get("ACUDEVICE_HOME")
    if not home:
        return False
    return directory == Path(home) or Path(home) in directory.parents


def make_private_dirs(root: Path) -> Path:
    """Create `root` and its missing parents; each one of ours is 0700 from its creation, so
    there is no moment when another user could list it (and no notice about it later)."""
    missing: list[Path] = []
    directory = root
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for directory in reversed(missing):
        ours = _ours(directory, root)
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE if ours else 0o777)
        except FileExistsError:  # made meanwhile, by another acudevice
            continue
        if ours:  # mkdir applied the umask; a strange one (0o277) could lock us out
            os.chmod(directory, PRIVATE_DIR_MODE)
    return root


def make_private(root: Path, *, notice: bool = True) -> Path:
    """Create `root` 0700 if missing; make it and everything in it 0700 (dirs) / 0600 (files).

    The data directory holds BLE bond keys and health records, as ~/.ssh and BlueZ hold
    keys: no other local user may read them. What acudevice creates is private from its
    creation; existing files with wider modes (from an older version, by hand, or written by
    a library such as Bumble) are tightened, with one line saying so when `notice` is set.
    """
    make_private_dirs(root)
    fixed = 0
    for path in [root, *root.rglob("*")]:
        try:
            info = path.lstat()
        except OSError:  # removed meanwhile
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        wanted = PRIVATE_DIR_MODE if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE_MODE
        if stat.S_IMODE(info.st_mode) & ~wanted:
            os.chmod(path, stat.S_IMODE(info.st_mode) & wanted)
            fixed += 1
    if fixed and notice:
        print(
            f"acudevice: made {root} private ({fixed} item(s) were readable by other users)",
            file=sys.stderr,
        )
    return root


def private_data_dir() -> Path:
    """The user data directory, created private (see `make_private`)."""
    return make_private(user_data_dir())


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 if it does not exist, so it is never born readable."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE_MODE)
    os.close(fd)
    return path

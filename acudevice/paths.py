"""Where shipped profiles and per-user files live.

`ACUDEVICE_HOME` overrides the per-user directories (tests, kiosks, several users on one
gateway); otherwise platformdirs picks the platform's usual places.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "acudevice"


def shipped_profiles_dir() -> Path:
    """`profiles/` from the wheel, or from the source tree in a development install."""
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

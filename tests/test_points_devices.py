from pathlib import Path

import pytest

from acudevice.errors import InputError, NotFoundError
from acudevice.paths import shipped_profiles_dir
from acudevice.plan.devices import PressureDevice, VibrationDevice
from acudevice.plan.library import load_device, load_devices, load_points

REQUIRED = ["PC6", "HT7", "LI4", "SP6", "LR3", "ST36", "GB21", "BL60", "BL67"]


def test_catalog_has_every_point_a_program_may_target() -> None:
    catalog = load_points()
    for code in REQUIRED:
        point = catalog.resolve(code)
        assert len(point.location) > 40, f"{code} needs placement guidance a user can follow"
        assert point.region


def test_p6_alias_resolves_to_pc6_case_insensitively() -> None:
    catalog = load_points()
    assert catalog.resolve("P6").code == "PC6"
    assert catalog.resolve("p6").code == "PC6"


def test_pregnancy_points_are_flagged_as_in_the_domain_facts() -> None:
    """The oracle is facts.md (the points to avoid in pregnancy), not the file under test."""
    catalog = load_points()
    flagged = {p.code for p in catalog if p.pregnancy_avoid}
    assert flagged == {"LI4", "SP6", "GB21", "BL60", "BL67"}


def test_unknown_point_names_the_known_ones() -> None:
    with pytest.raises(NotFoundError, match="PC6"):
        load_points().resolve("XX1")


def test_wristband_and_vibration_pad_models_ship() -> None:
    band = load_device("wristband-p1")
    pad = load_device("vibepad-v1")
    assert isinstance(band, PressureDevice) and band.hardware_max_kpa <= 40
    assert band.default_user_cap_kpa == 20
    assert isinstance(pad, VibrationDevice) and pad.max_continuous_run_s > 0
    assert {d.name for d in load_devices()} >= {"wristband-p1", "vibepad-v1"}


def test_a_points_file_is_read_again_once_it_changes(tmp_path: Path) -> None:
    """Sessions reuse what was read, but never a version of the file that is gone."""
    copy = tmp_path / "points.toml"
    text = shipped_profiles_dir().joinpath("points.toml").read_text()
    copy.write_text(text)
    assert load_points(copy) is load_points(copy)
    copy.write_text(text.replace("[points.HT7]", "[points.HT7X]", 1))
    assert "HT7X" in load_points(copy) and "HT7" not in load_points(copy)
    copy.write_text("points = [")
    with pytest.raises(InputError, match="malformed TOML"):
        load_points(copy)
    with pytest.raises(InputError, match="malformed TOML"):
        load_points(copy)  # a bad file is refused every time, not remembered

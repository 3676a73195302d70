"""The flat public face: what docs/api.md imports exists, and everything exported resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import acudevice

pytestmark = pytest.mark.unit

API_DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_every_exported_name_resolves() -> None:
    for name in acudevice.__all__:
        assert getattr(acudevice, name) is not None, name


def test_what_the_api_doc_imports_is_exported() -> None:
    imported: set[str] = set()
    for line in re.findall(r"^from acudevice import (.+)$", API_DOC.read_text(), re.M):
        imported.update(n.strip() for n in line.split(","))
    assert imported, "docs/api.md shows no `from acudevice import ...`"
    assert imported <= set(acudevice.__all__)


def test_every_error_is_an_acudevice_error() -> None:
    errors = [
        getattr(acudevice, n)
        for n in acudevice.__all__
        if isinstance(getattr(acudevice, n), type) and n.endswith(("Error", "Refused", "Timeout"))
    ]
    assert errors and all(issubclass(e, acudevice.AcuDeviceError) for e in errors)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Sesion'"):
        acudevice.Sesion  # noqa: B018


def test_programs_by_name() -> None:
    assert "nausea-relief" in acudevice.programs.names()
    assert acudevice.programs.get("nausea-relief").name == "nausea-relief"

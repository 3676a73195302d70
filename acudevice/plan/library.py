"""Loading points, device models and programs from TOML, with every problem reported.

Problems name the file and the field (`phases[1].duration_s`) so a user can fix a file
without reading a traceback.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from acudevice.errors import InputError, NotFoundError, Problem
from acudevice.files import parsed_once, problems_from_validation, read_toml
from acudevice.paths import (
    make_private,
    shipped_profiles_dir,
    user_config_dir,
    user_programs_dir,
)
from acudevice.plan.devices import DeviceModel
from acudevice.plan.points import Point, PointCatalog
from acudevice.plan.program import Program

_DEVICE_ADAPTER: TypeAdapter[DeviceModel] = TypeAdapter(DeviceModel)


def load_points(path: Path | None = None) -> PointCatalog:
    return parsed_once("points", path or shipped_profiles_dir() / "points.toml", _parse_points)


def _parse_points(path: Path) -> PointCatalog:
    data = read_toml(path)
    problems: list[Problem] = []
    points: dict[str, Point] = {}
    for code, body in dict(data.get("points", {})).items():
        try:
            points[code] = Point.model_validate({"code": code, **body})
        except ValidationError as exc:
            problems += [
                Problem(str(path), f"points.{code}.{p.field}", p.message)
                for p in problems_from_validation(str(path), exc, Point)
            ]
    if problems:
        raise InputError(problems)
    return PointCatalog(points)


def parse_device(path: Path) -> DeviceModel:
    return parsed_once("device", path, _parse_device)


def _parse_device(path: Path) -> DeviceModel:
    try:
        return _DEVICE_ADAPTER.validate_python(read_toml(path))
    except ValidationError as exc:
        raise InputError(problems_from_validation(str(path), exc, DeviceModel)) from None


def load_device(name: str, directory: Path | None = None) -> DeviceModel:
    directory = directory or shipped_profiles_dir() / "devices"
    for path in sorted(directory.glob("*.toml")):
        model = parse_device(path)
        if model.name == name:
            return model
    known = ", ".join(m.name for m in load_devices(directory))
    raise NotFoundError(f"unknown device model {name!r}; known models: {known}")


def load_devices(directory: Path | None = None) -> list[DeviceModel]:
    directory = directory or shipped_profiles_dir() / "devices"
    return [parse_device(p) for p in sorted(directory.glob("*.toml"))]


def parse_program(path: Path, catalog: PointCatalog | None = None) -> Program:
    """Validate one program file; raises InputError listing every problem.

    The file is read and validated once per version of it (a gateway starts a session on
    a thousand bands, and each start looks its program up); its points are checked against
    `catalog` every time."""
    catalog = catalog or load_points()
    points, program, invalid = parsed_once("program", path, _read_program)
    problems = list(invalid) + [
        Problem(str(path), f"sites[{i}].point", f"unknown point or alias {point!r}")
        for i, point in points
        if point not in catalog
    ]
    if problems or program is None:
        raise InputError(problems)
    return program


def _read_program(
    path: Path,
) -> tuple[tuple[tuple[int, str], ...], Program | None, tuple[Problem, ...]]:
    """The file's site points (index, code), and the program or what is wrong with it."""
    data = read_toml(path)
    sites = data.get("sites")
    points = tuple(
        (i, site["point"])
        for i, site in enumerate(sites if isinstance(sites, list) else [])
        if isinstance(site, dict) and isinstance(site.get("point"), str)
    )
    try:
        return points, Program.model_validate(data), ()
    except ValidationError as exc:
        return points, None, tuple(problems_from_validation(str(path), exc, Program))


class ProgramLibrary:
    """Shipped programs plus the user's own; a user file may add, never silently replace."""

    def __init__(
        self,
        shipped_dir: Path | None = None,
        user_dir: Path | None = None,
        catalog: PointCatalog | None = None,
    ) -> None:
        self.shipped_dir = shipped_dir or shipped_profiles_dir() / "programs"
        self.user_dir = user_dir or user_programs_dir()
        if user_dir is None and user_config_dir().is_dir():
            make_private(user_config_dir())  # the user's own files stay the user's
        self.catalog = catalog or load_points()

    def files(self) -> list[tuple[str, Path]]:
        found = [("shipped", p) for p in sorted(self.shipped_dir.glob("*.toml"))]
        if self.user_dir.is_dir():
            found += [("user", p) for p in sorted(self.user_dir.glob("*.toml"))]
        return found

    def load_all(self) -> dict[str, tuple[str, Program]]:
        """Every program by name with its origin; raises InputError on any bad or duplicate file."""
        programs: dict[str, tuple[str, Program, Path]] = {}
        problems: list[Problem] = []
        for origin, path in self.files():
            try:
                program = parse_program(path, self.catalog)
            except InputError as exc:
                problems += exc.problems
                continue
            if program.name in programs:
                _, _, first = programs[program.name]
                problems.append(
                    Problem(
                        str(path),
                        "name",
                        f"program {program.name!r} is already defined in {first}; "
                        "rename one of them (user programs never shadow shipped ones)",
                    )
                )
                continue
            programs[program.name] = (origin, program, path)
        if problems:
            raise InputError(problems)
        return {name: (origin, prog) for name, (origin, prog, _) in programs.items()}

    def get(self, name_or_path: str) -> Program:
        """A program by name, or by path to a .toml file."""
        path = Path(name_or_path)
        if name_or_path.endswith(".toml") or path.is_file():
            return parse_program(path, self.catalog)
        programs = self.load_all()
        if name_or_path not in programs:
            raise NotFoundError(
                f"unknown program {name_or_path!r}; known programs: {', '.join(sorted(programs))}"
            )
        return programs[name_or_path][1]

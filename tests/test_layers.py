"""Imports run one way, as docs DESIGN's layer table says, and never in a circle.

Read from the source with `ast` (nothing is imported), so a new upward arrow fails here
whether or not a test happens to execute it. Imports under `if TYPE_CHECKING:` are
annotations, not arrows, and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]

# DESIGN.md's table: each layer, the modules it holds, and the layers it may import. What a
# layer may import, it may also import what those may import (the closure): a session may
# use protocol types because the device layer below it does. Anything else is an upward or
# sideways arrow: transport may not read the store, plan may not use safety.
LAYERS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    (
        "foundation",
        ("acudevice.errors", "acudevice.paths", "acudevice.files", "acudevice.numbers"),
        (),
    ),
    ("protocol", ("acudevice.protocol",), ("foundation",)),
    ("plan", ("acudevice.plan", "acudevice.programs"), ("foundation",)),
    ("safety", ("acudevice.safety",), ("plan", "foundation")),
    ("store", ("acudevice.store",), ("plan", "foundation")),
    ("ble", ("acudevice.ble",), ("foundation",)),
    ("transport", ("acudevice.transport",), ("protocol", "ble", "foundation")),
    (
        "device",
        (
            "acudevice.device",
            "acudevice.conformance",
        ),
        ("transport", "protocol", "store", "safety", "plan"),
    ),
    ("session", ("acudevice.session",), ("device", "safety", "store", "plan")),
    ("bridge", ("acudevice.bridge",), ("session", "device", "store", "safety", "plan")),
    ("study", ("acudevice.study",), ("bridge", "store", "plan")),
    (
        "front",
        ("acudevice.cli", "acudevice.plots", "acudevice.export", "acudevice.report"),
        ("study", "bridge", "session", "device"),
    ),
]
_RANK = {name: rank for rank, (name, _, _) in enumerate(LAYERS)}


def _closure(layer: str) -> set[str]:
    allowed = {layer}
    todo = [layer]
    while todo:
        for below in LAYERS[_RANK[todo.pop()]][2]:
            if below not in allowed:
                allowed.add(below)
                todo.append(below)
    return allowed


MAY_IMPORT = {name: _closure(name) for name, _, _ in LAYERS}

# The simulator's core (`simulator/core/`, what mypyc compiles) is the firmware and hardware
# model: it speaks the wire protocol and knows nothing of plans, safety, sessions or the
# front ends around it, so what a compiled build is made from stays this short list (see
# simulator/compiled.py). It implements no transport: `simulator.loopback`, around it, does.
# The front ends around it (clock, links, servers) may also use the transport interface;
# the CLI and the campaigns drive the host's Session (the link campaign its Keeper, through
# bands served on real transports: `simulator.link_bands`), so they may use anything.
SIMULATOR_CORE = "simulator.core"
CORE_MAY_IMPORT = (
    "simulator.core",
    "acudevice.protocol",
    "acudevice.errors",
    "acudevice.paths",
    "acudevice.files",
    "acudevice.numbers",
)
SIMULATOR_MAY_IMPORT = (*CORE_MAY_IMPORT, "simulator", "acudevice.transport")
SIMULATOR_FRONT_ENDS = (
    "simulator.cli",
    "simulator.campaign",
    "simulator.campaign_cli",
    "simulator.campaign_report",
    "simulator.link_bands",
    "simulator.link_campaign",
    "simulator.link_campaign_cli",
    "simulator.link_campaign_report",
    "simulator.link_cuts",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_blocks(tree)
    found: set[str] = set()
    package = module_name(path).rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            # `from acudevice import programs` names a module, not an attribute
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("acudevice", "simulator")}


def sources() -> dict[str, set[str]]:
    files = [*ROOT.joinpath("acudevice").rglob("*.py"), *ROOT.joinpath("simulator").rglob("*.py")]
    modules = {module_name(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        # keep only real modules (drop `pkg.attribute` names that are not modules)
        graph[name] = {m for m in imports_of(path) if m in modules and m != name}
    return graph


def layer_of(module: str) -> str | None:
    for name, prefixes, _ in LAYERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return name
    return None


GRAPH = sources()


def test_every_acudevice_module_has_a_layer() -> None:
    homeless = [m for m in GRAPH if m.startswith("acudevice.") and layer_of(m) is None]
    assert homeless == [], f"add these to DESIGN.md's layer table and to LAYERS: {homeless}"


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    upward = []
    for module, targets in graph.items():
        here = layer_of(module)
        if here is None:
            continue
        for target in sorted(targets):
            there = layer_of(target)
            if target.startswith("simulator"):
                upward.append(f"{module} -> {target} (acudevice never imports the simulator)")
            elif there is not None and there not in MAY_IMPORT[here]:
                upward.append(f"{module} ({here}) -> {target} ({there})")
    return upward


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_foundation_imports_nothing_of_ours() -> None:
    assert MAY_IMPORT["foundation"] == {"foundation"}
    assert "store" not in MAY_IMPORT["transport"] and "safety" not in MAY_IMPORT["plan"]


def test_no_import_runs_up_the_layers() -> None:
    assert upward_arrows(GRAPH) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert cycles(GRAPH) == []


def test_the_package_face_imports_only_the_foundation_when_loaded() -> None:
    assert {layer_of(m) for m in GRAPH["acudevice"]} <= {"foundation"}


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def core_arrows_out(graph: dict[str, set[str]]) -> list[str]:
    """Imports from the simulator's core to anything but itself, the protocol and the
    foundation."""
    return [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if _within(module, (SIMULATOR_CORE,))
        for target in sorted(targets)
        if not _within(target, CORE_MAY_IMPORT)
    ]


def test_the_simulator_core_imports_only_itself_the_protocol_and_the_foundation() -> None:
    assert any(_within(m, (SIMULATOR_CORE,)) for m in GRAPH), "the core folder moved?"
    assert core_arrows_out(GRAPH) == []


def test_the_simulator_front_ends_reach_the_host_only_through_the_transport() -> None:
    wrong = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module.startswith("simulator") and not _within(module, SIMULATOR_FRONT_ENDS)
        for target in targets
        if not _within(target, SIMULATOR_MAY_IMPORT)
    ]
    assert wrong == []


def test_the_core_rule_catches_an_arrow_out_of_the_core() -> None:
    bent = {
        "simulator.core.firmware": {"acudevice.protocol", "simulator.core.plant"},
        "simulator.core.device": {"simulator.clock"},  # a front end
        "simulator.core.models": {"acudevice.plan.devices"},  # above the protocol
        "simulator.core.requests": {"acudevice.transport.base"},
    }
    assert core_arrows_out(bent) == [
        "simulator.core.device -> simulator.clock",
        "simulator.core.models -> acudevice.plan.devices",
        "simulator.core.requests -> acudevice.transport.base",
    ]


def test_the_checks_catch_an_upward_arrow_and_a_circle() -> None:
    """The checks can fail: the arrows this project once had are caught."""
    bent = {
        "acudevice.transport.registry": {"acudevice.store.devices"},
        "acudevice.plan.compiler": {"acudevice.safety.limits"},
        "acudevice.safety.limits": {"acudevice.plan.compiler"},
        "acudevice.protocol.schedule": {"acudevice.plan.schedule"},
    }
    assert len(upward_arrows(bent)) == 3
    assert cycles(bent) == [["acudevice.plan.compiler", "acudevice.safety.limits"]]

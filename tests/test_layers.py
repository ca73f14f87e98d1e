"""The package's architecture, checked: no import cycle, and no import from a lower layer to a higher one.

Every ``import`` statement of every module is read with ``ast`` (those inside functions too, since
a lazy import is still a dependency), resolved to a module of the package, and checked against
:data:`LAYERS`. The pure layers (``records``, ``sampling``) are also held to a short list of
outside modules, so that no I/O can creep into planning.
"""

from __future__ import annotations

import ast
import pathlib
import sys

import pytest

import timelapse_pipes

PACKAGE = pathlib.Path(timelapse_pipes.__file__).parent
NAME = "timelapse_pipes"

# Lowest first: a module may import its own layer's package and any layer listed before it.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "records", "_compat"),
    ("sampling",),
    ("reading",),
    ("config",),
    ("stages",),
    ("nodes",),
    ("graph",),
    ("testing",),
    ("index", "integrations"),
    ("cli",),
    ("__init__", "__main__"),
]
LAYER_OF = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}

# What the pure layers may import from outside the package: no file, network or torch.
PURE_PARTS = ("records", "sampling")
PURE_ALLOWED = {"__future__", "bisect", "dataclasses", "functools", "math", "operator", "typing", "collections", "numpy"}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def top_part(module: str) -> str:
    """The first part below the package: ``timelapse_pipes.reading.fast.zarr`` -> ``reading``."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def imports_of(path: pathlib.Path) -> tuple[set[str], set[str]]:
    """(the package's modules this file imports, the outside top-level modules it imports)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    inside, outside = set(), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] + [f"{target}.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == NAME or name.startswith(NAME + "."):
                while name not in MODULES and "." in name:  # "pkg.mod.symbol" -> "pkg.mod"
                    name = name.rsplit(".", 1)[0]
                if name in MODULES and name != here:
                    inside.add(name)
            else:
                outside.add(name.split(".")[0])
    return inside, outside


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def test_every_module_belongs_to_a_layer() -> None:
    unknown = sorted({top_part(name) for name in MODULES} - set(LAYER_OF))
    assert not unknown, f"add {unknown} to LAYERS"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_from_a_higher_layer(name: str) -> None:
    mine = top_part(name)
    upward = []
    for target in sorted(GRAPH[name][0]):
        theirs = top_part(target)
        if theirs == mine or target == NAME + "." + mine:
            continue
        if LAYER_OF[theirs] >= LAYER_OF[mine] and mine not in ("__init__", "__main__"):
            upward.append(target)
    assert not upward, f"{name} (layer {LAYER_OF[mine]}) imports from its own or a higher layer: {upward}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if top_part(n) in PURE_PARTS))
def test_pure_layers_import_no_io(name: str) -> None:
    foreign = sorted(GRAPH[name][1] - PURE_ALLOWED)
    assert not foreign, f"{name} is pure planning but imports {foreign}"


def test_no_import_cycle() -> None:
    inside = {name: GRAPH[name][0] for name in MODULES}
    visiting, done, cycle = set(), set(), []

    def visit(name: str, path: list[str]) -> None:
        if name in done or cycle:
            return
        if name in visiting:
            cycle.extend(path[path.index(name):] + [name])
            return
        visiting.add(name)
        for target in sorted(inside[name]):
            # a package's __init__ re-exporting its own modules is not a cycle of behaviour
            if not (target.startswith(name + ".") and MODULES[name].name == "__init__.py"):
                visit(target, path + [name])
        visiting.discard(name)
        done.add(name)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for name in sorted(MODULES):
        visit(name, [])
    assert not cycle, " -> ".join(cycle)


def test_the_package_root_stays_small() -> None:
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name not in ("__pycache__", "__init__.py", "__main__.py"))
    assert len(entries) <= 13, entries


@pytest.mark.parametrize("folder", sorted(p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"))
def test_every_folder_says_what_lives_there(folder: pathlib.Path) -> None:
    init = folder / "__init__.py"
    assert init.exists(), f"{folder} has no __init__.py"
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{init} has no module docstring"


TESTS = pathlib.Path(__file__).resolve().parent
TEST_FOLDERS = sorted(p for p in [TESTS, *TESTS.rglob("*")] if p.is_dir() and any(p.glob("*.py")))


@pytest.mark.parametrize("folder", TEST_FOLDERS, ids=[p.relative_to(TESTS.parent).as_posix() for p in TEST_FOLDERS])
def test_every_test_folder_is_a_package_that_says_what_it_covers(folder: pathlib.Path) -> None:
    """Test modules are imported as ``tests.<layer>.<module>``: without ``__init__.py``, two folders'
    modules of the same name would collide."""
    init = folder / "__init__.py"
    assert init.exists(), f"{folder} has no __init__.py"
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{init} has no module docstring"

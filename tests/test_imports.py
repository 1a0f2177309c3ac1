"""The import graph of ``src/avsa``: no cycle and no upward import, counting imports inside functions.

Every module is parsed with :mod:`ast` (nothing is imported); each ``import
avsa...`` and ``from avsa... import ...`` anywhere in the file, at module
level or inside a function, is an edge to the avsa module it names (for
``from package import name``, to the submodule ``package.name`` when that is a
module, else to the package). The layers are those of ``docs/interfaces.md``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import avsa

SRC = Path(avsa.__file__).resolve().parent


def module_files() -> dict[str, Path]:
    """Dotted name → file of every module of the package."""
    files = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The avsa modules that module ``name`` (file ``path``) imports anywhere."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # ``import a.b.c`` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported_modules(name, path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "avsa.cli" in graph and "avsa.errors" in graph["avsa.cli"]
    # demo.py imports the trainer inside a function only
    assert "avsa.train.trainer" in graph["avsa.demo"]


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_src():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


LAYERS = {  # lowest first; a module may import its own layer and the ones below
    "avsa.errors": 0, "avsa.audio_inputs": 0,
    "avsa.spatial": 1, "avsa.media": 2, "avsa.data": 3, "avsa.models": 4, "avsa.train": 5, "avsa.inference": 6,
    "avsa.evaluate": 7, "avsa.demo": 8, "avsa.experiments": 8, "avsa.commands": 9, "avsa.cli": 9,
    "avsa": 10,  # the package's top level: the lazy façade avsa.load (avsa.inference.model)
}


def layer(module: str) -> int:
    """Layer of a module: that of its longest prefix in :data:`LAYERS`."""
    while module not in LAYERS:
        module = module.rpartition(".")[0]
    return LAYERS[module]


def test_no_module_imports_a_higher_layer():
    upward = sorted(f"{a} -> {b}" for a, bs in import_graph().items() for b in bs if layer(b) > layer(a))
    assert not upward, "imports of a higher layer: " + ", ".join(upward)


def test_models_import_only_torch_and_the_shared_vocabulary():
    """Models depend on torch, errors, the audio inputs' table and the direction conventions only."""
    stdlib = {"__future__", "argparse", "collections", "dataclasses", "math", "typing"}
    for name, path in module_files().items():
        if not name.startswith("avsa.models"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for imported in names:
                top = imported.split(".")[0]
                # avsa.spatial.sphere: the direction conventions, so that the crop geometry the video→audio
                # transformer is given is the very rotation the audio was made with
                assert top in stdlib | {"torch"} or imported.startswith(("avsa.models", "avsa.errors",
                                                                          "avsa.audio_inputs", "avsa.spatial.sphere")), \
                    (name, imported)

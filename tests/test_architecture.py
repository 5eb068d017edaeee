"""The package's layers (ARCHITECTURE.md), checked on the import graph built from the source.

Bottom to top: core -> tokenizer kinds -> uses (train, eval, llm, the Modality objects) ->
cli. A module imports only from its own layer or below, and no modules or units import each
other round in a cycle. Function-local imports count like top-level ones (they are where
cycles hide); only `mmtok.cli` may import mmtok modules inside functions, so that
`mmtok --help` and argument errors never wait for torch. Imports under `if TYPE_CHECKING:`
are for annotations only and do not count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mmtok

PACKAGE = Path(mmtok.__file__).parent
CORE, KINDS, USES, CLI = 0, 1, 2, 3
LAYER_NAMES = ("core", "kinds", "uses", "cli")

# unit -> layer. A module belongs to the unit of the longest key that is it or a package above
# it ("mmtok" itself: the package root only).
LAYER_OF = {
    "mmtok.errors": CORE, "mmtok.lazy": CORE, "mmtok.files": CORE, "mmtok.configs": CORE, "mmtok.tokenizer": CORE,
    "mmtok.checkpoint": CORE, "mmtok.config_json": CORE, "mmtok.tokens_file": CORE, "mmtok.layout": CORE,
    "mmtok.padding": CORE, "mmtok.quantize": CORE, "mmtok.nn": CORE, "mmtok.media": CORE, "mmtok.metrics": CORE,
    "mmtok": KINDS, "mmtok.image": KINDS, "mmtok.audio": KINDS, "mmtok.video": KINDS, "mmtok.pretrained": KINDS,
    "mmtok.loading": KINDS, "mmtok.kinds": KINDS,
    "mmtok.image.modality": USES, "mmtok.audio.modality": USES, "mmtok.video.modality": USES, "mmtok.modalities": USES,
    "mmtok.train": USES, "mmtok.eval": USES, "mmtok.llm": USES,
    "mmtok.cli": CLI,
}
LOCAL_IMPORTS_ALLOWED = ("mmtok.cli",)


class Import:
    """One import of an mmtok module: `source` imports `target` at `line`, inside a function or not."""

    def __init__(self, source: str, target: str, line: int, local: bool):
        self.source, self.target, self.line, self.local = source, target, line, local

    def __repr__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target}{' (in a function)' if self.local else ''}"


def modules_of(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under `root` (the folder of `package`)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(root: Path, package: str) -> list[Import]:
    """Every import of a `package` module by a `package` module, with relative imports
    resolved and `from pkg import name` pointing at the submodule when `name` is one."""
    modules = modules_of(root, package)
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                       for n in ast.walk(block)}
        in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in typing_only:
                continue
            for target in _targets(node, name, path.name == "__init__.py", modules):
                if target.split(".")[0] == package and target != name:
                    found.append(Import(name, _existing(target, modules), node.lineno, id(node) in in_function))
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def _existing(target: str, modules: dict[str, Path]) -> str:
    while target not in modules and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def within(module: str, unit: str) -> bool:
    """`module` is `unit` or inside it (a top-level package name, "mmtok", holds only its root)."""
    return module == unit or ("." in unit and module.startswith(unit + "."))


def unit_of(module: str, layers: dict[str, int]) -> str:
    candidates = [u for u in layers if within(module, u)]
    if not candidates:
        raise KeyError(module)
    return max(candidates, key=len)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    nodes = set(edges) | {t for ts in edges.values() for t in ts}
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def violations(imports: list[Import], layers: dict[str, int], local_allowed: tuple[str, ...]) -> list[str]:
    """Every broken rule, one line each: upward imports, cycles of modules or of units, and
    function-local imports outside `local_allowed`."""
    problems = []
    module_edges: dict[str, set[str]] = {}
    unit_edges: dict[str, set[str]] = {}
    for imp in imports:
        source_unit, target_unit = unit_of(imp.source, layers), unit_of(imp.target, layers)
        if layers[target_unit] > layers[source_unit]:
            problems.append(f"upward: {imp} ({LAYER_NAMES[layers[source_unit]]} imports {LAYER_NAMES[layers[target_unit]]})")
        if imp.local and not any(within(imp.source, a) for a in local_allowed):
            problems.append(f"function-local import outside {local_allowed}: {imp}")
        module_edges.setdefault(imp.source, set()).add(imp.target)
        if source_unit != target_unit:
            unit_edges.setdefault(source_unit, set()).add(target_unit)
    problems += [f"module cycle: {' <-> '.join(c)}" for c in cycles(module_edges)]
    problems += [f"unit cycle: {' <-> '.join(c)}" for c in cycles(unit_edges)]
    return problems


# -- the package --------------------------------------------------------------------------------

def test_every_module_has_a_layer():
    unplaced = [m for m in modules_of(PACKAGE, "mmtok") if not any(within(m, u) for u in LAYER_OF)]
    assert unplaced == [], f"add these to LAYER_OF (and ARCHITECTURE.md): {unplaced}"


def test_layers_hold_and_nothing_imports_in_a_cycle():
    problems = violations(imports_of(PACKAGE, "mmtok"), LAYER_OF, LOCAL_IMPORTS_ALLOWED)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("argv", [["--help"], ["encode", "--help"], ["extend", "--help"], ["encode"]])
def test_help_and_argument_errors_never_import_torch(argv):
    """What the lazy imports are for: the CLI answers these before any model code loads."""
    probe = textwrap.dedent(f"""
        import sys
        from mmtok.cli.main import main
        try:
            main({argv!r}, prog_name="mmtok")
        except SystemExit as done:
            code = done.code
        heavy = [m for m in ("torch", "transformers", "numpy") if m in sys.modules]
        print("CODE", code, "HEAVY", heavy)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120).stdout
    assert out.strip().endswith("HEAVY []"), out[-500:]
    assert ("CODE 0" in out) == ("--help" in argv)


# -- the checker itself, on small packages written here -----------------------------------------

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


TOY_LAYERS = {"pkg": 1, "pkg.low": 0, "pkg.high": 1}


def test_checker_finds_an_upward_import_hidden_in_a_function(tmp_path):
    root = _package(tmp_path, {"low.py": "def f():\n    from pkg import high\n", "high.py": "import pkg.low\n"})
    problems = violations(imports_of(root, "pkg"), TOY_LAYERS, ())
    assert any(p.startswith("upward: pkg.low:2 -> pkg.high") for p in problems), problems
    assert any(p.startswith("function-local import") for p in problems), problems
    assert any(p.startswith("module cycle: pkg.high <-> pkg.low") for p in problems), problems


def test_checker_finds_a_relative_import_cycle_and_ignores_annotations(tmp_path):
    root = _package(tmp_path, {
        "high.py": "from .sub import a\n",
        "sub/__init__.py": "",
        "sub/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import low\nfrom .. import high\n",
        "low.py": "",
    })
    layers = {**TOY_LAYERS, "pkg.sub": 1}
    problems = violations(imports_of(root, "pkg"), layers, ())
    assert problems == ["module cycle: pkg.high <-> pkg.sub.a", "unit cycle: pkg.high <-> pkg.sub"], problems


def test_checker_passes_a_clean_package(tmp_path):
    root = _package(tmp_path, {"low.py": "import json\n", "high.py": "from pkg.low import json\n"})
    assert violations(imports_of(root, "pkg"), TOY_LAYERS, ()) == []

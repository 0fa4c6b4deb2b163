"""The layout shows the architecture: the data flows one way, JAX lives in nn/ and
population/ only, nothing in the library imports the command line, and the README's tree
lists every module."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dendrax"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The dendrax modules ``name`` imports, anywhere in the file (lazy imports too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in out if m in modules and m != name and not name.startswith(m + ".")}


GRAPH = {name: _imports(name, path, _modules()) for name, path in _modules().items()}


def test_no_import_cycles():
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in sorted(GRAPH[name]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, path + [dep])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_nothing_in_the_library_imports_the_command_line():
    users = sorted(n for n, deps in GRAPH.items()
                   if "dendrax.cli" in deps and n not in ("dendrax.cli", "dendrax.__main__"))
    assert users == []


JAX_SIDE = ("dendrax.nn", "dendrax.population")


def _jax_side_imports(path: Path) -> tuple[bool, set[str]]:
    """(whether the module imports the JAX side at its top level, the functions that
    import it lazily)."""
    tree = ast.parse(path.read_text())

    def imports_jax(node) -> bool:
        return any(isinstance(n, (ast.Import, ast.ImportFrom)) and any(
            (name or "").startswith(JAX_SIDE) for name in
            ([n.module] if isinstance(n, ast.ImportFrom) else [a.name for a in n.names]))
            for n in ast.walk(node))

    top = any(imports_jax(node) for node in tree.body
              if isinstance(node, (ast.Import, ast.ImportFrom)))
    lazy = {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and imports_jax(node)}
    return top, lazy


def test_the_search_side_reaches_the_jax_side_only_lazily_to_train():
    lazy = {}
    for path in list((PACKAGE / "search").glob("*.py")) + list((PACKAGE / "data").glob("*.py")):
        top, functions = _jax_side_imports(path)
        assert not top, path.name
        if functions:
            lazy[path.name] = functions
    # The default trainer, and the Ray executor's worker tasks: nothing else.
    assert lazy == {"searcher.py": {"trainer"},
                    "executors.py": {"plan_task", "bucket_task", "_prepare_worker"}}


def test_importing_the_searcher_and_the_data_loads_no_jax():
    code = ("import sys, dendrax, dendrax.search, dendrax.data, dendrax.examples; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', "
            "'optax', 'jaxlib')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_readme_tree_lists_every_module():
    readme = (ROOT / "README.md").read_text()
    tree = readme[readme.index("```\ndendrax/"):]
    tree = tree[:tree.index("```", 4)]
    listed = set(re.findall(r"^\s+(\w+\.py)\b", tree, re.MULTILINE))
    files = {p.name for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py",
                                                                        "__main__.py")}
    data_modules = {p.name for p in (PACKAGE / "data").glob("*.py")}
    mentioned = {f"{m}.py" for m in re.findall(r"\b(\w+)\b", tree)}
    missing = sorted(f for f in files if f not in listed and
                     not (f in data_modules and f in mentioned))
    assert missing == []

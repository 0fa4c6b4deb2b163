"""The layout shows the architecture: the data flows one way, JAX lives in nn/ and
population/ only, nothing in the library imports the command line, and the README's tree
lists every module."""

from __future__ import annotations

import ast
import json
import os
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
    # The default trainer, PBT's trainer, and the Ray executor's worker tasks: nothing else.
    assert lazy == {"searcher.py": {"trainer"}, "pbt.py": {"_pbt_trainer", "trainer"},
                    "executors.py": {"plan_task", "bucket_task", "_prepare_worker"}}


def test_the_jax_side_never_imports_the_search_side():
    """nn/ and population/ speak the shared vocabulary (dendrax.spec, dendrax.config,
    dendrax.plan), never the searcher's package: the arrows point one way."""
    offenders = {name: sorted(d for d in deps if d.startswith("dendrax.search"))
                 for name, deps in GRAPH.items() if name.startswith(JAX_SIDE)}
    assert {n: d for n, d in offenders.items() if d} == {}


def test_the_vocabulary_is_a_leaf():
    allowed = {"dendrax.errors", "dendrax.checks", "dendrax.spec", "dendrax.config"}
    for name in ("dendrax.errors", "dendrax.checks", "dendrax.spec", "dendrax.config",
                 "dendrax.plan"):
        assert GRAPH[name] <= allowed | {"dendrax"}, (name, GRAPH[name] - allowed)


# Entry points that must load neither JAX nor an optional package, each imported in turn
# in ONE fresh interpreter (the first, dendrax.search.config, also loads none of the
# searcher, results or log modules); then the two CLI commands that read without training.
HEAVY = ("jax", "jaxlib", "flax", "optax", "optuna", "matplotlib", "mlflow", "tensorboardX",
         "pandas", "ray")
ENTRY_POINTS = ("dendrax.search.config", "dendrax", "dendrax.search", "dendrax.search.searcher",
                "dendrax.search.spaces", "dendrax.search.budget", "dendrax.search.log",
                "dendrax.search.results", "dendrax.search.record", "dendrax.search.pipeline",
                "dendrax.search.arguments", "dendrax.search.table", "dendrax.search.callbacks",
                "dendrax.search.progress", "dendrax.search.optuna_bridge",
                "dendrax.search.executors", "dendrax.export", "dendrax.plots", "dendrax.data",
                "dendrax.examples", "dendrax.stats", "dendrax.robustness", "dendrax.cli",
                "cli estimate", "cli show", "cli plot")
_PROBE = """
import importlib, json, sys
heavy, log, figures, steps = {heavy!r}, {log!r}, {figures!r}, {steps!r}
internals = ("dendrax.search.searcher", "dendrax.search.results", "dendrax.search.log")
seen = {{}}
for step in steps:
    if step == "cli estimate":
        from dendrax.cli import main
        main(["estimate", "--n-neurons", "12", "--n-dendrites", "25",
              "--n-dendrite-inputs", "64", "--architecture", "soma_disabled", "--no-soma"])
    elif step == "cli show":
        from dendrax.cli import main
        main(["show", log, "--top", "3"])
    elif step == "cli plot":  # matplotlib is its business; nothing else heavy is
        from dendrax.cli import main
        main(["plot", log, "--out", figures, "--top", "3", "--metric", "test"])
        heavy = tuple(h for h in heavy if h != "matplotlib")
    else:
        importlib.import_module(step)
    seen[step] = sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
    if step == "dendrax.search.config":  # the first step: nothing loaded before it
        seen[step] += sorted(m for m in internals if m in sys.modules)
print("PROBE" + json.dumps(seen))
"""


@pytest.fixture(scope="module")
def entry_point_probe(tmp_path_factory):
    from conftest import FakeTrainer, make_searcher

    folder = tmp_path_factory.mktemp("probe")
    log, figures = str(folder / "run.jsonl"), str(folder / "figures")
    make_searcher(FakeTrainer(), log_path=log, max_params=100_000, min_param_ratio=0.01)\
        .grid_search({"n_neurons": [8, 10], "synaptic_resampling": [False]})
    code = _PROBE.format(heavy=HEAVY, log=log, figures=figures, steps=ENTRY_POINTS)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("PROBE"))
    return json.loads(line[len("PROBE"):]), done.stdout, figures


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_entry_points_load_no_jax_and_no_optional_package(entry_point_probe, entry_point):
    seen, output, figures = entry_point_probe
    # A failure names the first entry point (in ENTRY_POINTS order) that loads one.
    assert seen[entry_point] == [], f"{entry_point} loaded {seen[entry_point]}"
    if entry_point == "cli estimate":
        assert "2067" in output.split()
    if entry_point == "cli show":
        assert "n_neurons=10" in output and "n_neurons=8" in output
    if entry_point == "cli plot":
        from dendrax import plots

        written = sorted(os.listdir(figures))
        assert written == sorted(f"{name}.png" for name in plots.FIGURES)
        for name in written:
            with open(os.path.join(figures, name), "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"


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

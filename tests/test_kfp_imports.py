"""Import boundaries (DESIGN §1): the core and the exec wrapper load no kfp; carbon_kfp.kfp does.

Each check runs in a fresh interpreter, so modules imported by other tests do not hide a leak.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

HEAVY = ("kfp", "google", "pandas", "numpy", "requests", "codecarbon", "carbontracker")


def loaded_after(statement: str) -> set[str]:
    """Top-level packages that ``statement`` adds to ``sys.modules`` in a new interpreter.

    Interpreter start-up already imports some (a ``*-nspkg.pth`` file imports ``google``), so
    what a bare interpreter holds is subtracted.
    """
    listing = "import sys\nprint(' '.join({m.split('.')[0] for m in sys.modules}))"
    return _modules(f"{statement}\n{listing}") - _modules(listing)


def _modules(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "statement",
    [
        "import carbon_kfp",
        "import carbon_kfp.executor, carbon_kfp.report, carbon_kfp.compare",
        "import argparse, carbon_kfp.executor as exe\n"
        "exe.configure_exec_parser(argparse.ArgumentParser())",
        # what `carbon-kfp exec` loads before it runs the command
        "import carbon_kfp.cli\ncarbon_kfp.cli.build_parser()",
    ],
)
def test_core_imports_no_kfp_or_heavy_packages(statement: str) -> None:
    assert not loaded_after(statement) & set(HEAVY)


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_carbon_kfp_kfp_imports_kfp_and_backs_the_lazy_alias() -> None:
    assert "kfp" in loaded_after(
        "import carbon_kfp, carbon_kfp.kfp\nassert carbon_kfp.track is carbon_kfp.kfp.track"
    )


def test_exec_wrapper_imports_neither_the_cli_nor_kfp() -> None:
    listing = "import sys\nprint(' '.join(m for m in sys.modules if m.startswith('carbon_kfp')))"
    loaded = _modules(f"import carbon_kfp.executor\n{listing}")
    assert "carbon_kfp.executor" in loaded
    assert not {m for m in loaded if m == "carbon_kfp.cli" or m.startswith("carbon_kfp.cli.")}
    assert not loaded_after("import carbon_kfp.executor") & {"kfp"}


def _imports_of(path: Path, package: str) -> set[str]:
    """``carbon_kfp`` modules that ``path`` imports (module level and inside functions)."""
    import ast

    names: set[str] = set()
    module = package + "." + path.stem if path.stem != "__init__" else package
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parent = module.split(".")
                parent = parent[: len(parent) - node.level + (path.stem == "__init__")]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in names if name.startswith("carbon_kfp")}


def _kit_modules() -> dict[str, Path]:
    """Every module of the installed layout: carbon_kfp/, components/ and pipelines/ mapped in."""
    roots = {
        "carbon_kfp": REPO_ROOT / "carbon_kfp",
        "carbon_kfp.components": REPO_ROOT / "components",
        "carbon_kfp.pipelines": REPO_ROOT / "pipelines",
    }
    modules: dict[str, Path] = {}
    for package, root in roots.items():
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            if "tests" in parts or (package == "carbon_kfp" and parts[0] in ("components",)):
                continue
            name = ".".join([package, *parts]).removesuffix(".__init__")
            modules[name] = path
    return modules


def test_no_import_cycle_inside_the_kit() -> None:
    """Module-level and function-level imports together form no cycle (layers point down)."""
    modules = _kit_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.stem == "__init__" else name.rpartition(".")[0]
        targets = _imports_of(path, package)
        graph[name] = {
            target
            for target in targets
            if target in modules and target != name and not name.startswith(target + ".")
        }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert "carbon_kfp.components.carbon_report.component" in graph  # the walk saw the kit
    assert "carbon_kfp.cli" not in graph["carbon_kfp.executor"]


def test_components_do_not_import_pipelines() -> None:
    for name, path in _kit_modules().items():
        if name.startswith("carbon_kfp.components"):
            package = name if path.stem == "__init__" else name.rpartition(".")[0]
            assert not {
                m for m in _imports_of(path, package) if m.startswith("carbon_kfp.pipelines")
            }, name

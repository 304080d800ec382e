"""Imports run one way: the layering of `apps/`, checked with import-linter contracts over grimp's import graph.

A module may import only from its own app or from layers below it (docs/architecture.md). Every app's `api`
package, `admin` module and management commands are the experience layer on top: they may import any app, and
nothing else may import them. grimp also sees imports inside functions, so hiding an import in a function does
not get it past these checks; a separate check refuses function-level imports of `apps` outright.
"""

import ast
import copy
import sys
import textwrap
from pathlib import Path

import grimp
import pytest
from importlinter.configuration import configure
from importlinter.contracts.layers import LayersContract
from importlinter.contracts.protected import ProtectedContract

from tests.sourcecode import parse

configure()

ROOT = "apps"
APPS_DIR = Path(__file__).resolve().parents[1] / ROOT

# Top to bottom. Apps joined by "|" may not import each other; apps joined by ":" may.
APP_LAYERS = [
    ("console", ":", "demo"),
    ("reconciliation", ":", "metrics"),
    ("sync", "|", "configuration"),
    ("inbound",),
    ("mapping", "|", "connectors"),
    ("canonical", "|", "sandbox"),
    ("systems",),
    ("core",),
]
EXPERIENCE = ("api", "admin", "management")

# Function-level imports of `apps` that are not there to dodge an import loop: (module, imported) → why.
# Modules named `apps.py` are allowed as a whole (see `_allowed`).
FUNCTION_IMPORTS_ALLOWED = {
    ("apps.core.migrations.0002_roles_and_system_user", "apps.core.roles"): (
        "a RunPython function of a migration: the roles module is only needed when the migration runs"
    ),
}


def _apps_present(root_dir: Path) -> set[str]:
    return {path.parent.name for path in root_dir.glob("*/__init__.py")}


def layer_expressions(root: str, present: set[str]) -> list[str]:
    """The contract's layers, from the apps that exist (apps other helpers have not created yet are left out)."""
    layers = []
    for entry in APP_LAYERS:
        names = [name for name in entry[::2] if name in present]
        if names:
            joiner = f" {entry[1]} " if len(entry) > 1 else ""
            layers.append(joiner.join(f"{root}.{name}" for name in names))
    return layers


def is_experience(module: str, root: str = ROOT) -> bool:
    parts = module.split(".")
    return len(parts) > 2 and parts[0] == root and parts[2] in EXPERIENCE


def contracts(graph, root: str, present: set[str]) -> list:
    experience = sorted(module for module in graph.modules if is_experience(module, root))
    session = {"root_packages": [root]}
    layers = LayersContract(
        name="Apps import only from their own app or from layers below",
        session_options=session,
        contract_options={
            "layers": layer_expressions(root, present),
            "ignore_imports": [f"{module} -> {root}.**" for module in experience],
            "unmatched_ignore_imports_alerting": "none",
        },
    )
    on_top = ProtectedContract(
        name="Only the experience layer (api, admin, management commands) imports the experience layer",
        session_options=session,
        contract_options={"protected_modules": experience, "allowed_importers": experience},
    )
    return [layers, on_top] if experience else [layers]


def _describe(check) -> list[str]:
    lines = []
    for dependency in check.metadata.get("invalid_dependencies", []):
        for route in dependency["routes"]:
            chain = " -> ".join(
                f"{link['importer']} (l.{','.join(map(str, link['line_numbers']))})" for link in route["chain"]
            )
            lines.append(f"{dependency['importer']} must not import {dependency['imported']}: {chain} -> …")
    illegal = {
        (link["importer"], link["imported"], tuple(link["line_numbers"]))
        for broken in check.metadata.get("illegal_imports", [])
        for link in broken.illegal_links
    }
    for importer, imported, numbers in sorted(illegal):
        where = f" (l.{','.join(map(str, numbers))})" if numbers else ""
        lines.append(f"{importer}{where} must not import {imported}")
    return lines


def violations(graph, root: str = ROOT, present: set[str] | None = None) -> list[str]:
    """Every broken contract with the imports that break it; empty when imports run one way."""
    present = present if present is not None else _apps_present(APPS_DIR)
    found = []
    for contract in contracts(graph, root, present):
        check = contract.check(copy.deepcopy(graph), verbose=False)
        if not check.kept:
            found.append(f"{contract.name}:\n  " + "\n  ".join(_describe(check) or [repr(check.metadata)]))
    return found


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph(ROOT, cache_dir=None)


def test_every_app_has_its_place_in_the_layers():
    placed = {name for entry in APP_LAYERS for name in entry[::2]}
    unplaced = _apps_present(APPS_DIR) - placed
    assert not unplaced, f"Put these apps in APP_LAYERS (tests/test_layering.py) and docs/architecture.md: {unplaced}"


def test_imports_run_one_way(graph):
    broken = violations(graph)
    assert not broken, "\n".join(broken)


def test_the_check_fails_when_a_lower_layer_imports_a_higher_one(graph):
    reversed_graph = copy.deepcopy(graph)
    reversed_graph.add_import(
        importer="apps.inbound.services",
        imported="apps.sync.services",
        line_number=1,
        line_contents="from apps.sync.services import transaction_start",
    )
    broken = violations(reversed_graph)
    assert len(broken) == 1
    assert "apps.inbound must not import apps.sync" in broken[0]
    assert "apps.inbound.services (l.1)" in broken[0]


def test_the_check_fails_when_the_engine_imports_the_api(graph):
    reversed_graph = copy.deepcopy(graph)
    reversed_graph.add_import(importer="apps.sync.engine", imported="apps.sync.api.serializers")
    broken = violations(reversed_graph)
    assert len(broken) == 1 and "experience layer" in broken[0]
    assert "apps.sync.engine must not import apps.sync.api.serializers" in broken[0]


def test_the_check_sees_an_import_hidden_in_a_function(tmp_path, monkeypatch):
    """A real package on disk whose bottom layer reaches up from inside a function."""
    package = tmp_path / "layered_sample"
    for app, source in {
        "core": "def helper():\n    from layered_sample.sync import engine\n    return engine\n",
        "systems": "",
        "sync": "",
    }.items():
        (package / app).mkdir(parents=True)
        (package / app / "__init__.py").write_text("")
        (package / app / "models.py").write_text(source)
    (package / "sync" / "engine.py").write_text("from layered_sample.core import models\n")
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    sample = grimp.build_graph("layered_sample", cache_dir=None)

    broken = violations(sample, root="layered_sample", present={"core", "systems", "sync"})

    assert len(broken) == 1
    assert "layered_sample.core must not import layered_sample.sync" in broken[0]
    sys.modules.pop("layered_sample", None)


# --- no import inside a function to dodge a loop ---------------------------------------------------


def function_level_imports(source: str, module: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import of this project's `apps` inside a function body."""
    tree = parse(source)
    package = module.removesuffix(".__init__") if module.endswith(".__init__") else module.rsplit(".", 1)[0]
    found = []

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if in_function and isinstance(child, ast.Import):
                found.extend((child.lineno, alias.name) for alias in child.names if alias.name.split(".")[0] == ROOT)
            elif in_function and isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)] if child.level > 1 else base
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] == ROOT:
                    found.append((child.lineno, target))
            visit(child, inner)

    visit(tree, False)
    return found


def _module_name(path: Path) -> str:
    relative = path.relative_to(APPS_DIR.parent).with_suffix("")
    return ".".join(relative.parts)


def _allowed(module: str, imported: str) -> bool:
    # Django imports an app's apps.py before any model exists, so it can only import what needs models inside
    # ready() or the hooks ready() connects: an ordering rule of Django, not a loop.
    return module.endswith(".apps") or (module, imported) in FUNCTION_IMPORTS_ALLOWED


def test_no_module_imports_apps_inside_a_function():
    hidden = []
    for path in sorted(APPS_DIR.rglob("*.py")):
        module = _module_name(path)
        for line, imported in function_level_imports(path.read_text(), module):
            if not _allowed(module, imported):
                hidden.append(f"{path.relative_to(APPS_DIR.parent)}:{line} imports {imported} inside a function")
    assert not hidden, (
        "Import at module level (an import loop is fixed by moving code, not by hiding the import):\n"
        + "\n".join(hidden)
    )


def test_the_function_level_check_sees_relative_and_absolute_imports():
    source = textwrap.dedent(
        """
        from apps.core.errors import BusinessError

        def run():
            from .registry import workflow_for
            import apps.inbound.models
            from django.db import transaction
            return workflow_for

        class Engine:
            def finish(self):
                from ..inbound import models
        """
    )
    found = function_level_imports(source, "apps.sync.engine")
    assert found == [(5, "apps.sync.registry"), (6, "apps.inbound.models"), (12, "apps.inbound")]

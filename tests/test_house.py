"""The shape of the house (CONTRIBUTING §2): what a new contributor relies on without
reading every file.

* the import graph has no circle (also counting imports inside functions) and keeps the
  floors: ``layers`` below ``models``, neither importing ``viz``, ``widgets``,
  ``train``, ``checks``; ``viz`` below ``experiments`` and ``widgets``;
* ``tutorial_lib.layers`` re-exports every public name of its modules;
* the API page documents every public module, and CONTRIBUTING's layout names every
  module of the package;
* CHANGELOG's sections use the two headings that CONTRIBUTING §9 and the release tooling
  (tests/test_release.py) use.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import pkgutil
import re

import tutorial_lib

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "tutorial_lib"

#: Imports tolerated against the floors, each with the reason and the way out.
COMPATIBILITY_SHIMS = {
    # viz.__getattr__ forwards plot_experiment/plot_metric_curves to experiment_plots for
    # chapters executed before the move; remove when no chapter calls them through viz.
    ("tutorial_lib.viz", "tutorial_lib.experiment_plots"),
}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def import_graph() -> dict:
    """``{module: {modules it imports}}`` for tutorial_lib, from every import statement
    (top level or inside a function)."""
    graph = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[
                        : len(package.split(".")) - node.level + 1
                    ]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.startswith("tutorial_lib"):
                    for alias in node.names:
                        full = f"{target}.{alias.name}"
                        deps.add(full if _is_module(full) else target)
            elif isinstance(node, ast.Import):
                deps |= {
                    a.name for a in node.names if a.name.startswith("tutorial_lib")
                }
        graph[name] = {
            d for d in deps - {name} if (name, d) not in COMPATIBILITY_SHIMS
        }
    return graph


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    state, path, cycles = {}, [], []

    def visit(u):
        state[u] = "open"
        path.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == "open":
                cycles.append(path[path.index(v) :] + [v])
            elif v in graph and v not in state:
                visit(v)
        path.pop()
        state[u] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import circles: " + "; ".join(
        " -> ".join(c) for c in cycles
    )


def _floor_violations(lower: str, forbidden: tuple) -> list:
    return [
        (m, d)
        for m, deps in import_graph().items()
        if m == lower or m.startswith(lower + ".")
        for d in deps
        if any(d == f or d.startswith(f + ".") for f in forbidden)
    ]


def test_the_floors():
    above_layers = (
        "tutorial_lib.models",
        "tutorial_lib.viz",
        "tutorial_lib.widgets",
    )
    above_layers += (
        "tutorial_lib.train",
        "tutorial_lib.checks",
        "tutorial_lib.diagrams",
    )
    assert not _floor_violations("tutorial_lib.layers", above_layers)
    assert not _floor_violations("tutorial_lib.models", above_layers[1:])
    above_viz = ("tutorial_lib.experiments", "tutorial_lib.experiment_plots")
    above_viz += (
        "tutorial_lib.widgets",
        "tutorial_lib.compare",
        "tutorial_lib.train",
    )
    assert not _floor_violations("tutorial_lib.viz", above_viz)
    # one low-level loader (hub_io), one public front (hub): no hub_* imports the front
    hub_parts = [m for m in import_graph() if m.startswith("tutorial_lib.hub_")]
    assert hub_parts and not any(
        "tutorial_lib.hub" in import_graph()[m] for m in hub_parts
    )


def test_layers_reexports_every_public_layer():
    import tutorial_lib.layers as layers

    expected = []
    for info in pkgutil.iter_modules(layers.__path__):
        module = importlib.import_module(f"tutorial_lib.layers.{info.name}")
        for name in module.__all__:
            assert getattr(layers, name) is getattr(module, name), name
            expected.append(name)
    assert sorted(layers.__all__) == sorted(expected)


def _public_modules() -> list:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(tutorial_lib.__path__, "tutorial_lib.")
        if not any(part.startswith("_") for part in info.name.split("."))
    )


def test_the_api_page_documents_every_public_module():
    page = (ROOT / "book" / "appendix" / "api.md").read_text()
    documented = set(re.findall(r"automodule:: (tutorial_lib[\w.]*)", page))
    missing = [m for m in _public_modules() if m not in documented]
    assert not missing, f"book/appendix/api.md has no automodule for {missing}"
    stale = [m for m in documented if not _is_module(m)]
    assert not stale, (
        f"book/appendix/api.md documents modules that do not exist: {stale}"
    )


def test_contributing_layout_names_every_module():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text[text.index("## 2. Layout") : text.index("## 3.")]
    names = re.findall(r"[\w]+\.py|[\w]+/", section)
    missing = []
    for path in sorted(LIBRARY.rglob("*.py")):
        rel = path.relative_to(LIBRARY)
        if path.name == "__init__.py" or "__pycache__" in rel.parts:
            continue
        if path.name not in names:
            missing.append(str(rel))
    for folder in sorted(
        p for p in LIBRARY.iterdir() if (p / "__init__.py").exists()
    ):
        if f"{folder.name}/" not in names:
            missing.append(f"{folder.name}/")
    assert not missing, f"CONTRIBUTING §2's layout does not name {missing}"


def test_the_new_component_checklist_names_real_places():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text[text.index("### A new component") : text.index("## 3.")]
    for path in re.findall(
        r"`((?:tutorial_lib|tests|book|tools)/[\w./-]+\.(?:py|md|yml))`", section
    ):
        assert (ROOT / path).exists(), (
            f"the checklist names {path}, which does not exist"
        )


def test_changelog_sections_use_the_headings_of_contributing():
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    allowed = {"### For readers (chapters)", "### For library users (API)"}
    for heading in allowed:
        assert heading in contributing, f"CONTRIBUTING §9 names {heading!r}"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    used = set(re.findall(r"^### .*$", changelog, re.M))
    assert used <= allowed, (
        f"CHANGELOG headings not in CONTRIBUTING §9: {sorted(used - allowed)}"
    )

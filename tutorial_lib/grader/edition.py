"""The student edition of ``tutorial_lib``: the library without the components a class is graded on.

:func:`build_edition` copies the grader's ``tutorial_lib`` into a folder (no ``__pycache__``, no
``grader``) and rewrites, in the source, every component an assignment's checks list in
``register(..., forbid=[...])``: a function keeps its name and raises, a class keeps its name and
bases and raises when built, each with a message that says why::

    NotImplementedError: tutorial_lib.erf.erf_radius is not in the student edition of tutorial_lib
    (the grader's sandbox): it is what this exercise asks you to write

``tutorial_lib.checks`` becomes a stub whose ``check_*`` functions do nothing (the grader runs
the checks itself, outside). The sandbox sees only this edition, so no path inside it (import,
copy of the package, fork, closure, pickle, reading files) reaches a reference implementation;
the real library stays in the grader's process.
"""

from __future__ import annotations

import ast
import os
import pathlib
import shutil
from typing import Dict, Iterable, List

from .assignment import GraderError

__all__ = ["build_edition"]

PACKAGE = pathlib.Path(__file__).resolve().parent.parent
_CHECKS_STUB = '''"""Not in the grader's sandbox: the grader runs the checks itself, outside. check_* calls do nothing."""


def __getattr__(name):
    if name.startswith("check_"):
        return lambda *args, **kwargs: None
    raise AttributeError(f"tutorial_lib.checks.{name} is not in the grader's sandbox")
'''


def _message(path: str) -> str:
    return (
        f"{path} is not in the student edition of tutorial_lib (the grader's sandbox): "
        "it is what this exercise asks you to write"
    )


def _module_file(root: pathlib.Path, path: str) -> "tuple[pathlib.Path, List[str]]":
    """The source file of the longest module prefix of ``path`` and the names inside it."""
    parts = path.split(".")[1:]
    for cut in range(len(parts), 0, -1):
        base = root.joinpath(*parts[:cut])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file() and parts[cut:]:
                return candidate, parts[cut:]
    raise GraderError(
        f"edition: expected {path} to name an object in a tutorial_lib module, got no such module"
    )


def _stub(node: ast.AST, path: str, source: str, indent: str) -> List[str]:
    message = repr(_message(path))
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(
            ast.get_source_segment(source, b) or "object" for b in node.bases
        )
        return [
            f"{indent}class {node.name}({bases}):",
            f"{indent}    def __init__(self, *args, **kwargs):",
            f"{indent}        raise NotImplementedError({message})",
            "",
            f"{indent}    def forward(self, *args, **kwargs):",
            f"{indent}        raise NotImplementedError({message})",
        ]
    name = getattr(node, "name", None) or path.rpartition(".")[2]
    return [
        f"{indent}def {name}(*args, **kwargs):",
        f"{indent}    raise NotImplementedError({message})",
    ]


def _remove(file: pathlib.Path, names: List[str], path: str) -> None:
    source = file.read_text(encoding="utf-8")
    tree = ast.parse(source)
    body, node = tree.body, None
    for depth, name in enumerate(names):
        matches = [
            n
            for n in body
            if (
                isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and n.name == name
            )
            or (
                isinstance(n, (ast.Assign, ast.AnnAssign))
                and name
                in [
                    t.id
                    for t in (
                        n.targets if isinstance(n, ast.Assign) else [n.target]
                    )
                    if isinstance(t, ast.Name)
                ]
            )
        ]
        if not matches:
            raise GraderError(
                f"edition: expected {path} to be defined in {file.name}, found no definition of {name!r}"
            )
        node = matches[-1]
        body = getattr(node, "body", [])
    lines = source.splitlines()
    start = (
        min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        - 1
    )
    indent = lines[node.lineno - 1][: node.col_offset]
    lines[start : node.end_lineno] = _stub(node, path, source, indent)
    text = "\n".join(lines) + "\n"
    # a rewrite that does not parse is the grader's bug: fail here, not in every sandbox
    ast.parse(text)
    file.write_text(text, encoding="utf-8")


def build_edition(
    forbid: Iterable[str], dest: "str | os.PathLike[str]"
) -> pathlib.Path:
    """Write the student edition into ``dest`` (``dest/tutorial_lib``) without the ``forbid`` components."""
    dest = pathlib.Path(dest)
    target = dest / "tutorial_lib"
    shutil.copytree(
        PACKAGE,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "grader"),
    )
    shutil.rmtree(target / "checks")
    (target / "checks").mkdir()
    (target / "checks" / "__init__.py").write_text(_CHECKS_STUB, encoding="utf-8")
    done: Dict[str, bool] = {}
    # a class before its methods
    for path in sorted(set(forbid), key=lambda p: p.count(".")):
        if any(path.startswith(other + ".") for other in done):
            continue  # inside a class already replaced
        file, names = _module_file(target, path)
        _remove(file, names, path)
        done[path] = True
    # readable by the sandbox's uid, writable by nobody
    for folder, dirs, files in os.walk(dest):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    return dest

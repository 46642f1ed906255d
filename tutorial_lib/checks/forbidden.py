"""Find, in a submission's source, uses of ``tutorial_lib``'s own implementation of an exercise.

The grader reads the source (it never runs it here): the definition of the graded function or
class, and every top-level function or class of the submission it refers to, transitively. A name
or attribute chain that resolves through the submission's imports to a forbidden object of the
check (``register(..., forbid=[...])``), under any alias or re-export, is a use:

* ``from tutorial_lib.erf import erf_radius as r`` then ``def erf_radius(e, f): return r(e, f)``;
* ``import tutorial_lib as tl`` then ``class ImagePooling(tl.layers.aspp.ImagePooling): pass``;
* no definition at all, the name still bound by the chapter's ``from tutorial_lib.erf import
  erf_radius`` (a deleted stub in a chapter notebook), or ``erf_radius = E.erf_radius``.

Obfuscated access (``getattr`` with computed strings, ``importlib.reload``) is caught at run time
by tripwires in the submission's process (:mod:`tutorial_lib.checks._child`) when the object is
actually used; copying the library's source is plagiarism that no grader can see.
"""
from __future__ import annotations

import ast
import importlib
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["forbidden_uses"]

_MISSING = object()


def resolve(path: str) -> Any:
    """The object at a dotted ``tutorial_lib`` path (``_MISSING`` if there is none)."""
    if not (path == "tutorial_lib" or path.startswith("tutorial_lib.")):
        return _MISSING
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING


def _imports(nodes: Sequence[ast.AST]) -> Dict[str, str]:
    """Alias -> dotted path for the import statements among ``nodes`` (and inside them)."""
    aliases: Dict[str, str] = {}
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                for a in sub.names:
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases[a.name.split(".")[0]] = a.name.split(".")[0]
            elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
                for a in sub.names:
                    aliases[a.asname or a.name] = f"{sub.module}.{a.name}"
    return aliases


def _dotted(node: ast.AST) -> Optional[List[str]]:
    parts: List[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return None


def forbidden_uses(sub: Any, symbol: str, forbid: Sequence[str]) -> List[str]:
    """The forbidden paths that ``symbol``'s definition in ``sub`` (a ``Submission``) refers to."""
    if not forbid:
        return []
    targets = {id(obj): path for path in forbid if (obj := resolve(path)) is not _MISSING}
    trees = []
    for chunk in sub.chunks:
        try:
            trees.append(ast.parse(chunk["source"]))
        except SyntaxError:
            continue
    body = [node for tree in trees for node in tree.body]
    aliases = _imports(body)
    defs: Dict[str, List[ast.AST]] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.Assign):  # erf_radius = E.erf_radius (or a lambda around it)
            for target in node.targets:
                if isinstance(target, ast.Name):
                    defs.setdefault(target.id, []).append(node.value)
    found: List[str] = []
    if symbol not in defs and symbol in aliases:  # no definition: the name is the imported one
        obj = resolve(aliases[symbol])
        hit = targets.get(id(obj)) if obj is not _MISSING else None
        if hit is not None:
            found.append(hit)
    todo, seen = [symbol], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for definition in defs.get(name, []):
            local = dict(aliases, **_imports([definition]))
            for node in ast.walk(definition):
                if isinstance(node, ast.Name) and node.id in defs and node.id not in seen:
                    todo.append(node.id)
                if not isinstance(node, (ast.Name, ast.Attribute)):
                    continue
                parts = _dotted(node)
                if not parts or parts[0] not in local:
                    continue
                path = ".".join([local[parts[0]]] + parts[1:])
                obj = resolve(path)
                hit = targets.get(id(obj)) if obj is not _MISSING else None
                if hit is None and path in forbid:
                    hit = path
                if hit is not None and hit not in found:
                    found.append(hit)
    return found

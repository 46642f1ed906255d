"""Find, in a submission's source, uses of ``tutorial_lib``'s own implementation of an exercise.

The grader reads the source (it never runs it here): the definition of the graded function or
class, and every top-level function or class of the submission it refers to, transitively. A name
or attribute chain that resolves through the submission's imports to a forbidden object of the
check (``register(..., forbid=[...])``), under any alias or re-export, is a use:

* ``from tutorial_lib.erf import erf_radius as r`` then ``def erf_radius(e, f): return r(e, f)``;
* ``import tutorial_lib as tl`` then ``class ImagePooling(tl.layers.aspp.ImagePooling): pass``;
* no definition at all, the name still bound by the chapter's ``from tutorial_lib.erf import
  erf_radius`` (a deleted stub in a chapter notebook), or ``erf_radius = E.erf_radius``.

Constructs that only serve to reach around the grader (``importlib.reload``, ``__wrapped__``,
``inspect.getsource``, ``exec`` of non-literal code, ``sys.modules``, strings that build the name
``tutorial_lib``...) are found in the whole submission by :func:`evasions` (the submission is then
not run); code copied from the library, renamed or not, by :func:`copied_from_library`; computed
attribute names on an imported module (``getattr(metrics, "mean_" + "iou")``) by tripwires in the
submission's process (:mod:`tutorial_lib.checks._child`) when the object is actually used. A
determined student can still obfuscate beyond a static scan (``chr`` codes, reading files): run
untrusted code in a container, and read suspicious submissions.
"""
from __future__ import annotations

import ast
import copy
import importlib
import pathlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["forbidden_uses", "evasions", "copied_from_library"]

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


# -- evasion constructs: the whole submission --------------------------------------------------------
#: attributes that reach around the tripwires (originals behind wrappers, frames, module internals)
_EVASIVE_ATTRS = {
    "__wrapped__": "__wrapped__ (the object behind a wrapper)",
    "__closure__": "__closure__ (a function's captured objects)",
    "cell_contents": "cell_contents (a function's captured objects)",
    "__globals__": "__globals__ (another module's globals)",
    "__code__": "__code__ (a function's code object)",
    "__bases__": "__bases__ (a class's base classes)",
    "__base__": "__base__ (a class's base class)",
    "__mro__": "__mro__ (a class's base classes)",
    "__subclasses__": "__subclasses__",
    "_getframe": "sys._getframe (the grader's frames)",
    "f_back": "f_back (the grader's frames)",
    "f_globals": "f_globals (the grader's frames)",
    "f_locals": "f_locals (the grader's frames)",
    "tb_frame": "tb_frame (the grader's frames)",
    "gi_frame": "gi_frame (the grader's frames)",
    "get_objects": "gc.get_objects",
    "get_referrers": "gc.get_referrers",
    "get_referents": "gc.get_referents",
    "getsource": "inspect.getsource (reading the library's source)",
    "getsourcelines": "inspect.getsourcelines (reading the library's source)",
    "reload": "importlib.reload",
    "import_module": "importlib.import_module",
    "spec_from_file_location": "importlib.util.spec_from_file_location",
    "SourceFileLoader": "importlib.machinery.SourceFileLoader",
    "exec_module": "exec_module",
    "load_module": "load_module",
    "__file__": "a module's __file__ (the library's files)",
    "__path__": "a package's __path__ (the library's files)",
    "__spec__": "a module's __spec__",
    "__loader__": "a module's __loader__",
}
#: modules whose import alone is an evasion construct (nothing a chapter exercise needs)
_EVASIVE_MODULES = {"inspect", "gc", "runpy", "ctypes", "__main__", "imp", "dis", "marshal",
                    "tutorial_lib.checks._child", "tutorial_lib.checks._remote", "tutorial_lib.checks._core"}
_EVASIVE_CALLS = {"__import__": "__import__", "exec": "exec", "eval": "eval", "compile": "compile",
                  "globals": "globals()", "vars": "vars()", "breakpoint": "breakpoint()"}
_PACKAGE = "tutorial_lib"


def _strings(node: ast.AST) -> Optional[str]:
    """The text of a literal string, or of a ``+`` chain / f-string of literal strings (else None)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _strings(node.left), _strings(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        parts = [_strings(v) for v in node.values]
        return "".join(p for p in parts if p is not None) if any(p is not None for p in parts) else None
    return None


def _literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def evasions(sub: Any) -> List[str]:
    """Constructs in the whole submission that reach around the grader, each with its line.

    ``importlib.reload``/``import_module``, ``__wrapped__`` and other introspection of wrappers,
    frames and modules, ``inspect`` (``getsource``), ``exec``/``eval``/``compile`` of anything but a
    literal string that leaves ``tutorial_lib`` alone, ``__import__``, ``sys.modules`` (except
    ``"x" in sys.modules``), ``gc``, ``__main__`` (except ``if __name__ == "__main__"``) and strings
    that spell or build the name ``tutorial_lib`` (a module path or pieces of one). Ordinary code
    (``getattr(self, f"conv_{i}")``, ``model.eval()``, ``torch.compile``) is not flagged.
    """
    found: List[str] = []

    def flag(what: str, node: ast.AST, label: str) -> None:
        text = f"{what} (line {getattr(node, 'lineno', '?')} of {label})"
        if text not in found:
            found.append(text)

    for chunk in sub.chunks:
        try:
            tree = ast.parse(chunk["source"])
        except SyntaxError:
            continue
        label = chunk["label"]
        parents: Dict[int, ast.AST] = {}
        docstrings = set()
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[id(child)] = node
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body \
                    and isinstance(node.body[0], ast.Expr) and _literal(node.body[0].value):
                docstrings.add(id(node.body[0].value))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in _EVASIVE_MODULES or a.name.split(".")[0] in _EVASIVE_MODULES:
                        flag(f"import {a.name}", node, label)
            elif isinstance(node, ast.ImportFrom) and node.module:
                if node.module in _EVASIVE_MODULES or node.module.split(".")[0] in _EVASIVE_MODULES:
                    flag(f"from {node.module} import ...", node, label)
                for a in node.names:
                    if f"{node.module}.{a.name}" in _EVASIVE_MODULES or a.name in _EVASIVE_ATTRS:
                        flag(f"from {node.module} import {a.name}", node, label)
            elif isinstance(node, ast.Attribute):
                if node.attr in _EVASIVE_ATTRS:
                    flag(_EVASIVE_ATTRS[node.attr], node, label)
                elif node.attr == "modules" and isinstance(node.value, ast.Name) and node.value.id == "sys":
                    parent = parents.get(id(node))
                    membership = isinstance(parent, ast.Compare) and parent.comparators == [node] \
                        and all(isinstance(op, (ast.In, ast.NotIn)) for op in parent.ops)
                    if not membership:
                        flag("sys.modules", node, label)
            elif isinstance(node, ast.Name):
                if node.id in _EVASIVE_ATTRS and node.id.startswith("__") and node.id != "__file__":
                    flag(_EVASIVE_ATTRS[node.id], node, label)
                elif node.id == "__builtins__":
                    flag("__builtins__", node, label)
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else \
                    func.attr if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and func.value.id == "builtins" else None
                if name in {"exec", "eval", "compile"}:
                    arg = node.args[0] if node.args else None
                    if not (arg is not None and _literal(arg) and _PACKAGE not in arg.value):
                        flag(f"{name}() of code that is not a plain literal string", node, label)
                elif name in _EVASIVE_CALLS:
                    flag(_EVASIVE_CALLS[name], node, label)
            if isinstance(node, (ast.Constant, ast.BinOp, ast.JoinedStr)) and id(node) not in docstrings:
                parent = parents.get(id(node))
                if isinstance(parent, (ast.BinOp, ast.JoinedStr)) and _strings(parent) is not None:
                    continue  # judged as part of the whole expression
                text = _strings(node)
                if text is None:
                    continue
                whole = text.strip()
                if any(c.isspace() for c in text):
                    continue  # a message or a title ("tutorial_lib 0.4123"), not a name
                if _PACKAGE in whole or (len(whole) >= 4 and "_" in whole and whole in _PACKAGE):
                    flag(f"a string that names {_PACKAGE} ({text[:40]!r})", node, label)
            if isinstance(node, ast.Constant) and node.value == "__main__":
                parent = parents.get(id(node))
                main_check = isinstance(parent, ast.Compare) and any(
                    isinstance(n, ast.Name) and n.id == "__name__" for n in [parent.left, *parent.comparators])
                if not main_check:
                    flag("__main__ (the grader's process)", node, label)
    return sorted(found, key=_line_order)


def _line_order(text: str) -> tuple:
    number = text.rpartition("(line ")[2].split(" ")[0]
    return (text.rpartition(" of ")[2], int(number) if number.isdigit() else 0)


# -- code copied from the library ------------------------------------------------------------------
#: the smallest definition (AST nodes) compared: below it, two honest solutions may well coincide
COPY_MIN_NODES = 40
_LIBRARY_DUMPS: Dict[str, Dict[str, str]] = {}


def _normalised(node: ast.AST) -> Tuple[str, int]:
    """An AST dump without names of its own: docstrings, annotations, the definition's name and
    local names (arguments, assigned variables) are dropped or numbered in order of appearance."""
    node = copy.deepcopy(node)
    local: Dict[str, str] = {}
    for sub in ast.walk(node):
        if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            sub.name = "_"
            if sub.body and isinstance(sub.body[0], ast.Expr) and _literal(sub.body[0].value):
                sub.body = sub.body[1:] or [ast.Pass()]
            if not isinstance(sub, ast.ClassDef):
                sub.returns = None
        if isinstance(sub, ast.arg):
            sub.annotation = None
            sub.arg = local.setdefault(sub.arg, f"v{len(local)}")
        elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            local.setdefault(sub.id, f"v{len(local)}")
        elif isinstance(sub, ast.AnnAssign):
            sub.annotation = ast.Constant(None)
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in local:
            sub.id = local[sub.id]
    return ast.dump(node, annotate_fields=False, include_attributes=False), sum(1 for _ in ast.walk(node))


def _library_dumps(module_name: str) -> Dict[str, str]:
    """Normalised dump -> dotted name of every function, class and method of a library module."""
    if module_name not in _LIBRARY_DUMPS:
        dumps: Dict[str, str] = {}
        try:
            module = importlib.import_module(module_name)
            tree = ast.parse(pathlib.Path(module.__file__ or "").read_text(encoding="utf-8"))
        except (ImportError, OSError, SyntaxError, ValueError):
            tree = ast.Module(body=[], type_ignores=[])
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                dump, size = _normalised(node)
                if size >= COPY_MIN_NODES:
                    dumps.setdefault(dump, f"{module_name}.{node.name}")
        _LIBRARY_DUMPS[module_name] = dumps
    return _LIBRARY_DUMPS[module_name]


def copied_from_library(sub: Any, symbol: str, forbid: Sequence[str]) -> List[str]:
    """Library definitions that ``symbol``'s code (or a helper of the submission it uses) copies.

    Each function, class and method reachable from the graded symbol is compared, as a normalised
    AST dump (no docstrings, annotations or names of its own), with those of the modules of the
    check's forbidden objects; renaming variables or deleting the docstring does not hide a copy.
    """
    modules = sorted({_module_of(path) for path in forbid} - {None})
    library: Dict[str, str] = {}
    for module_name in modules:
        library.update(_library_dumps(module_name))
    if not library:
        return []
    defs = _definitions(sub)
    found: List[str] = []
    todo, seen = [symbol], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for definition in defs.get(name, []):
            for node in ast.walk(definition):
                if isinstance(node, ast.Name) and node.id in defs and node.id not in seen:
                    todo.append(node.id)
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    dump, size = _normalised(node)
                    hit = library.get(dump) if size >= COPY_MIN_NODES else None
                    if hit is not None and hit not in found:
                        found.append(hit)
    return found


def _module_of(path: str) -> Optional[str]:
    obj = resolve(path)
    name = getattr(obj, "__module__", None) if obj is not _MISSING else None
    if name is None and obj is not _MISSING and isinstance(obj, type(importlib)):
        name = obj.__name__
    return name if isinstance(name, str) and name.startswith("tutorial_lib") else None


def _definitions(sub: Any) -> Dict[str, List[ast.AST]]:
    defs: Dict[str, List[ast.AST]] = {}
    for chunk in sub.chunks:
        try:
            tree = ast.parse(chunk["source"])
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defs.setdefault(node.name, []).append(node)
    return defs

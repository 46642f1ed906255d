"""Runnable checks for the book's exercises and for class assignments.

Each ``check_*`` function takes the student's function or class, tests it on several seeded
inputs against ``tutorial_lib``'s own component, prints short feedback and raises
``AssertionError`` on failure. The instructor's grader (``python -m tutorial_lib.grader``, a
separate subpackage students do not need) runs the same checks on submissions graded in a sandbox
(see the instructor page).
"""

import importlib as _importlib
import pkgutil as _pkgutil

from ._core import (
    REGISTRY,
    Check,
    Checker,
    CheckFailed,
    generator,
    register,
    run_check,
    set_private_seed,
)

# Every module of this package (one per part of the book) registers its checks on import and
# exposes its ``check_*`` functions here, so ``tutorial_lib.checks.check_atrous_conv2d`` works.
for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_"):
        continue
    _module = _importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", []):
        globals()[_name] = getattr(_module, _name)

__all__ = [
    "REGISTRY",
    "Check",
    "Checker",
    "CheckFailed",
    "generator",
    "register",
    "run_check",
    "set_private_seed",
]

"""Runnable checks for the book's exercises and for class assignments.

Each ``check_*`` function takes the student's function or class, tests it on several seeded
inputs against ``tutorial_lib``'s own component, prints short feedback and raises
``AssertionError`` on failure. ``python -m tutorial_lib.checks grade SUBMISSION`` runs every
check whose name matches a function or class in a submission (see the instructor page).
"""
from ._core import REGISTRY, Check, Checker, CheckFailed, register, run_check

__all__ = ["REGISTRY", "Check", "Checker", "CheckFailed", "register", "run_check"]

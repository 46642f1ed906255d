"""Every component an exercise forbids names the module that defines it, so the student
edition can remove it (a module split that moves a class must move its path here too)."""
from __future__ import annotations

import pytest

from tutorial_lib.checks import REGISTRY
from tutorial_lib.grader import edition

PATHS = sorted({p for check in REGISTRY.values() for p in (check.forbid or [])})


@pytest.mark.parametrize("path", PATHS)
def test_the_student_edition_can_remove_each_forbidden_component(path, tmp_path):
    edition.build_edition([path], tmp_path)

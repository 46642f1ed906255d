"""Assignments: which exercises a submission is graded on, for how many points, with which seed.

An assignment is a TOML file that the instructor keeps (it may hold the private seed)::

    title = "Metrics and the effective receptive field"
    timeout = 60            # seconds per exercise (and for running the submission); optional
    run_timeout = 300       # seconds for running the submission itself (default: timeout); optional
    budget = 900            # seconds for everything of one student, from its sandbox's start; optional
    memory_mb = 2048        # memory a submission may use above Python + torch; optional
    processes = 32          # processes and threads a submission may start; optional
    private_seed = 20261129 # optional: the checks draw their random cases from it, students never see it

    [[exercise]]
    check = "mean_iou"      # a registered check (python -m tutorial_lib.grader list)
    points = 2

    [[exercise]]
    check = "erf_radius"    # points default to the check's own (1)

The total is the sum of the points, whatever the submission defines: a missing or renamed
function scores 0 for its exercise. ``tools/assignments.py`` writes one such file per chapter.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field
from typing import Any, List, Optional

from ..checks import REGISTRY

__all__ = [
    "Assignment",
    "Exercise",
    "GraderError",
    "load_assignment",
    "parse_assignment",
]


class GraderError(ValueError):
    """The grader itself could not run (unreadable submission, bad assignment, unknown check)."""


@dataclass(frozen=True)
class Exercise:
    check: str
    points: float


@dataclass
class Assignment:
    title: str
    exercises: List[Exercise] = field(default_factory=list)
    timeout: Optional[float] = None
    private_seed: Optional[int] = None
    run_timeout: Optional[float] = None
    budget: Optional[float] = None
    memory_mb: Optional[int] = None
    processes: Optional[int] = None

    @property
    def max_score(self) -> float:
        return sum(e.points for e in self.exercises)

    def to_toml(self) -> str:
        lines = [f'title = "{_escape(self.title)}"']
        lines += [
            f"{key} = {getattr(self, key):g}"
            for key in (*_SETTINGS, "private_seed")
            if getattr(self, key) is not None
        ]
        for e in self.exercises:
            lines += [
                "",
                "[[exercise]]",
                f'check = "{e.check}"',
                f"points = {e.points:g}",
            ]
        return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


#: the optional settings and whether each is an integer (all positive)
_SETTINGS = {
    "timeout": False,
    "run_timeout": False,
    "budget": False,
    "memory_mb": True,
    "processes": True,
}


def _number(
    value: Any, what: str, integer: bool = False, positive: bool = True
) -> Any:
    kinds = (int,) if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or (positive and value <= 0)
    ):
        kind = "integer" if integer else "number"
        expected = f"a positive {kind}" if positive else f"an {kind}"
        raise GraderError(
            f"assignment: expected {what} to be {expected}, got {value!r}"
        )
    return value


def parse_assignment(data: Any, source: str = "assignment") -> Assignment:
    """Validate a parsed TOML document; ``GraderError`` naming what was expected and what came."""
    if not isinstance(data, dict):
        raise GraderError(f"{source}: expected a table, got {type(data).__name__}")
    known = ["title", *_SETTINGS, "private_seed", "exercise"]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise GraderError(
            f"{source}: expected keys {', '.join(known)}; got also {unknown}"
        )
    entries = data.get("exercise")
    if not isinstance(entries, list) or not entries:
        raise GraderError(
            f"{source}: expected at least one [[exercise]] table, got {entries!r}"
        )
    exercises, seen = [], set()
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("check"), str):
            raise GraderError(
                f'{source}: expected exercise {i} to have check = "<name>", got {entry!r}'
            )
        name = entry["check"]
        if name not in REGISTRY:
            raise GraderError(
                f"{source}: exercise {i}: expected a registered check, got {name!r}; "
                f"registered: {sorted(REGISTRY)}"
            )
        if name in seen:
            raise GraderError(
                f"{source}: exercise {i}: expected each check once, got {name!r} twice"
            )
        extra = sorted(set(entry) - {"check", "points"})
        if extra:
            raise GraderError(
                f"{source}: exercise {i}: expected keys check and points, got also {extra}"
            )
        seen.add(name)
        points = _number(
            entry.get("points", REGISTRY[name].points), f"the points of {name}"
        )
        exercises.append(Exercise(name, float(points)))
    settings = {
        k: _number(data[k], k, integer) * (1 if integer else 1.0)
        for k, integer in _SETTINGS.items()
        if data.get(k) is not None
    }
    seed = data.get("private_seed")
    return Assignment(
        title=str(data.get("title", source)),
        exercises=exercises,
        **settings,
        private_seed=None
        if seed is None
        else _number(seed, "private_seed", integer=True, positive=False),
    )


def load_assignment(path: "str | os.PathLike[str]") -> Assignment:
    """Read an assignment TOML file (see the module docstring)."""
    import tomllib

    path = pathlib.Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise GraderError(f"assignment: cannot read {path}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise GraderError(
            f"assignment: expected a TOML file, {path} is not one ({err})"
        ) from None
    return parse_assignment(data, str(path))

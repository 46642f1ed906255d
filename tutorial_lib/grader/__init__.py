"""The instructor's batch grader (not needed by students: their notebooks use ``tutorial_lib.checks``).

    python -m tutorial_lib.grader gradebook SUBMISSIONS/ --assignment A.toml --out OUT/
    python -m tutorial_lib.grader grade alice.ipynb --assignment A.toml
    python -m tutorial_lib.grader autograder A.toml --out autograder.zip   (Gradescope)

Each submission runs in a bubblewrap sandbox (:mod:`.sandbox`) with the student edition of the
library (:mod:`.edition`); the checks and the real library stay in the grader's process
(:mod:`.grade`); :mod:`.gradebook` writes the class's CSV and feedback. See the instructor page.
"""

from .assignment import (
    Assignment,
    Exercise,
    GraderError,
    load_assignment,
    parse_assignment,
)
from .sandbox import SandboxError

__all__ = [
    "Assignment",
    "Exercise",
    "GraderError",
    "SandboxError",
    "load_assignment",
    "parse_assignment",
]

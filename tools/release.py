"""Release helpers for ``.github/workflows/release.yml`` (CONTRIBUTING §9). Standard library only:
the release workflow runs them before anything is installed.

    python tools/release.py version          # tutorial_lib's __version__ (read from the source)
    python tools/release.py check-tag TAG    # exit 1 unless TAG is v<__version__> and CHANGELOG.md
                                             # has a dated section for that version
    python tools/release.py notes [VERSION]  # the CHANGELOG.md section of VERSION (default: __version__)
"""
from __future__ import annotations

import ast
import pathlib
import re
import sys
from typing import Dict, List, Optional, Tuple

ROOT = pathlib.Path(__file__).resolve().parent.parent
# "## [0.1.0] - 2026-11-29" or "## [Unreleased]" (Keep a Changelog)
HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?\s*$", re.M)
LINK_REFERENCE = re.compile(r"^\[[^\]]+\]: \S+\s*$\n?", re.M)
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def package_version(root: pathlib.Path = ROOT) -> str:
    """``tutorial_lib.__version__``, read from ``tutorial_lib/__init__.py`` without importing it."""
    tree = ast.parse((root / "tutorial_lib" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError("tutorial_lib/__init__.py defines no __version__")


def changelog_sections(text: str) -> List[Tuple[str, Optional[str], str]]:
    """``(version, date or None, body)`` for every ``## [...]`` section, newest first."""
    heads = list(HEADING.finditer(text))
    sections = []
    for head, after in zip(heads, heads[1:] + [None]):
        body = text[head.end():after.start() if after else len(text)]
        body = LINK_REFERENCE.sub("", body)  # "[0.1.0]: https://..." lines at the end of the file
        sections.append((head["version"], head["date"], body.strip("\n")))
    return sections


def released(text: str) -> Dict[str, Tuple[Optional[str], str]]:
    """The released versions of a changelog (every section but Unreleased): version -> (date, body)."""
    return {v: (d, b) for v, d, b in changelog_sections(text) if v.lower() != "unreleased"}


def newest_release(text: str) -> str:
    versions = list(released(text))
    if not versions:
        raise ValueError("CHANGELOG.md has no released section")
    return versions[0]


def check_tag(tag: str, root: pathlib.Path = ROOT) -> List[str]:
    """What is wrong with releasing ``tag`` from ``root`` (empty: nothing)."""
    version = package_version(root)
    problems = []
    if not SEMVER.match(version):
        problems.append(f"__version__ {version!r} is not X.Y.Z")
    if tag != f"v{version}":
        problems.append(f"tag {tag!r} is not v<__version__> = 'v{version}' (bump tutorial_lib/__init__.py "
                        f"or tag the right commit)")
    changelog = (root / "CHANGELOG.md").read_text()
    entry = released(changelog).get(version)
    if entry is None or entry[0] is None:
        problems.append(f"CHANGELOG.md has no dated section '## [{version}] - YYYY-MM-DD'")
    elif newest_release(changelog) != version:
        problems.append(f"CHANGELOG.md's newest release is {newest_release(changelog)}, not {version}")
    return problems


def main(argv: List[str]) -> int:
    if not argv or argv[0] not in {"version", "check-tag", "notes"}:
        print(__doc__)
        return 2
    if argv[0] == "version":
        print(package_version())
        return 0
    if argv[0] == "check-tag":
        if len(argv) != 2:
            print(__doc__)
            return 2
        problems = check_tag(argv[1])
        for problem in problems:
            print(f"release: {problem}", file=sys.stderr)
        if not problems:
            print(f"release: tag {argv[1]} matches tutorial_lib {package_version()} and CHANGELOG.md")
        return 1 if problems else 0
    version = argv[1] if len(argv) > 1 else package_version()
    entry = released((ROOT / "CHANGELOG.md").read_text()).get(version)
    if entry is None:
        print(f"release: CHANGELOG.md has no section for {version}", file=sys.stderr)
        return 1
    print(entry[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

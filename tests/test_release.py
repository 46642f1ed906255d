"""Publishing (CONTRIBUTING §9): the workflow files pass a real linter and pin their actions; the one
version number (``tutorial_lib.__version__``) is the one the setup cells, the installed metadata, the
README, the CHANGELOG and the book state; ``python -m build`` makes a wheel with the package data the
chapters need and nothing else of the repository.

Pinning policy: every ``uses:`` names a full 40-hex commit SHA followed by ``# vX.Y.Z``, the exact
release that commit is. Tags, even exact ones, can be moved; a SHA cannot, and the comment keeps the
version readable (and is what Dependabot/Renovate update alongside it).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import pathlib
import re
import subprocess
import sys
import tarfile
import types
import zipfile

import nbformat
import pytest
import yaml

import tutorial_lib

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import colab_check  # noqa: E402  (tools/colab_check.py: the clean copy of the working tree)
import notebooks  # noqa: E402  (tools/notebooks.py)
import release  # noqa: E402  (tools/release.py)

WORKFLOWS = ROOT / ".github" / "workflows"
BOOK_WORKFLOW = WORKFLOWS / "book.yml"
RELEASE_WORKFLOW = WORKFLOWS / "release.yml"
VERSION = tutorial_lib.__version__
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"^\s+#\s*(?P<version>v\d+\.\d+\.\d+)\b")


def _load_extension() -> types.ModuleType:
    """``book/_ext/release_version.py``, the Sphinx extension that puts the version into the book."""
    spec = importlib.util.spec_from_file_location("release_version", ROOT / "book" / "_ext" / "release_version.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release_version = _load_extension()


def _workflow(path: pathlib.Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _all_uses(node: object) -> list:
    if isinstance(node, dict):
        found = [node["uses"]] if isinstance(node.get("uses"), str) else []
        return found + [u for value in node.values() for u in _all_uses(value)]
    if isinstance(node, list):
        return [u for value in node for u in _all_uses(value)]
    return []


def _steps(job: dict) -> list:
    return job.get("steps", [])


# --- (a) the workflow files ------------------------------------------------------------------------


def test_workflows_pass_the_github_workflow_schema():
    """check-jsonschema with its built-in (vendored, offline) schema of GitHub workflow files."""
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(BOOK_WORKFLOW), str(RELEASE_WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linter_rejects_a_broken_workflow(tmp_path: pathlib.Path):
    """The lint is real: a job without runs-on and a step with an unknown key fail it."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  build:\n    steps:\n      - run: make test\n        colour: red\n")
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(broken)], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr


@pytest.mark.parametrize("path", [BOOK_WORKFLOW, RELEASE_WORKFLOW], ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_release(path: pathlib.Path):
    lines = [m for m in map(USES_LINE.match, path.read_text().splitlines()) if m]
    # every `uses` of the parsed file is on a `uses:` line of its own (none hidden in flow style)
    assert sorted(m["ref"] for m in lines) == sorted(_all_uses(_workflow(path)))
    assert lines, f"{path.name} uses no action"
    for match in lines:
        pinned, comment = PINNED.match(match["ref"]), VERSION_COMMENT.match(match["rest"])
        assert pinned, f"{path.name}: {match['ref']} is not pinned to a full commit SHA"
        assert comment, f"{path.name}: {match['ref']} lacks its '# vX.Y.Z' comment"


def test_one_commit_per_action_across_workflows():
    """An action is pinned to the same commit (and release) in every workflow file."""
    seen: dict = {}
    for path in (BOOK_WORKFLOW, RELEASE_WORKFLOW):
        for match in filter(None, map(USES_LINE.match, path.read_text().splitlines())):
            action, sha = match["ref"].split("@")
            pin = (sha, VERSION_COMMENT.match(match["rest"])["version"])
            assert seen.setdefault(action, pin) == pin, f"{action} is pinned to two commits: {seen[action]}, {pin}"


def test_release_tools_are_installed_by_the_project():
    """The linter and the build frontend come from requirements.txt (pinned), like everything else that
    make test uses; release.yml installs the same build version from there."""
    pins = dict(line.split("#")[0].strip().split("==", 1) for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line.split("#")[0])
    for name in ("check-jsonschema", "build"):
        assert name in pins, f"requirements.txt does not pin {name}"
        assert importlib.metadata.version(name) == pins[name]


def test_book_workflow_tests_builds_and_deploys():
    workflow = _workflow(BOOK_WORKFLOW)
    branch = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["branch"]
    assert workflow["on"]["push"]["branches"] == [branch]
    assert "pull_request" in workflow["on"]
    assert "group" in workflow["concurrency"]
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert "python:3.11" in build["container"]  # Python 3.11, as the README asks
    runs = [s.get("run", "") for s in _steps(build)]
    assert "make test" in runs  # the README's test command (it builds the book into _build/html)
    uploads = {s["uses"].split("@")[0]: s for s in _steps(build) if "uses" in s}
    pages, review = uploads["actions/upload-pages-artifact"], uploads["actions/upload-artifact"]
    assert pages["with"]["path"] == review["with"]["path"] == "_build/html"
    assert pages["if"] == "github.event_name != 'pull_request'"
    assert review["if"] == "github.event_name == 'pull_request'"
    assert deploy["needs"] == "build" and deploy["if"] == "github.event_name != 'pull_request'"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["concurrency"] == {"group": "github-pages", "cancel-in-progress": False}
    assert [s["uses"].split("@")[0] for s in _steps(deploy)] == ["actions/deploy-pages"]
    assert workflow["permissions"] == {"contents": "read"}  # least privilege outside deploy


def test_release_workflow_checks_tests_builds_and_publishes():
    workflow = _workflow(RELEASE_WORKFLOW)
    assert workflow["on"] == {"push": {"tags": ["v*.*.*"]}}
    jobs = workflow["jobs"]
    runs = "\n".join(s.get("run", "") for s in _steps(jobs["build"]))
    order = [runs.index(s) for s in ("tools/release.py check-tag", "python -m build --wheel --sdist",
                                     "make test", "tools/release.py notes")]
    assert order == sorted(order)  # tag checked first; distributions built before the tests write into the tree
    assert "grep -o '^build==" in runs  # build's version comes from requirements.txt
    pypi = jobs["pypi"]
    assert pypi["environment"]["name"] == "pypi" and pypi["permissions"] == {"id-token": "write"}
    assert "pypa/gh-action-pypi-publish" in _all_uses(pypi)[-1]
    assert not any("password" in (s.get("with") or {}) for s in _steps(pypi))  # trusted publishing: no token
    gh = jobs["github-release"]
    assert gh["permissions"] == {"contents": "write"} and set(gh["needs"]) == {"build", "pypi"}
    final = _steps(gh)[-1]
    assert final["uses"].startswith("softprops/action-gh-release@")
    assert final["with"]["files"].split() == ["dist/*.whl", "dist/*.tar.gz"]
    assert workflow["permissions"] == {"contents": "read"}


# --- the release helper ----------------------------------------------------------------------------


def _fake_root(tmp_path: pathlib.Path, version: str, changelog: str) -> pathlib.Path:
    (tmp_path / "tutorial_lib").mkdir(parents=True)
    (tmp_path / "tutorial_lib" / "__init__.py").write_text(f'"""doc"""\n__version__ = "{version}"\n')
    (tmp_path / "CHANGELOG.md").write_text(changelog)
    return tmp_path


CHANGELOG = """# Changelog

## [Unreleased]

- something new

## [1.2.0] - 2026-12-01

### For readers (chapters)

- a chapter

## [1.1.0] - 2026-11-01

- older

[Unreleased]: https://example.org/compare/v1.2.0...HEAD
[1.2.0]: https://example.org/releases/tag/v1.2.0
"""


def test_check_tag(tmp_path: pathlib.Path):
    root = _fake_root(tmp_path, "1.2.0", CHANGELOG)
    assert release.check_tag("v1.2.0", root) == []
    assert any("is not v<__version__>" in p for p in release.check_tag("v1.2.1", root))
    assert any("is not v<__version__>" in p for p in release.check_tag("1.2.0", root))


def test_check_tag_needs_a_dated_newest_changelog_section(tmp_path: pathlib.Path):
    undated = CHANGELOG.replace("## [1.2.0] - 2026-12-01", "## [1.2.0]")
    assert any("no dated section" in p for p in release.check_tag("v1.2.0", _fake_root(tmp_path / "a", "1.2.0", undated)))
    assert any("no dated section" in p for p in release.check_tag("v1.3.0", _fake_root(tmp_path / "b", "1.3.0", CHANGELOG)))
    assert any("newest release is 1.2.0" in p
               for p in release.check_tag("v1.1.0", _fake_root(tmp_path / "c", "1.1.0", CHANGELOG)))


def test_changelog_sections_and_notes():
    sections = release.changelog_sections(CHANGELOG)
    assert [(v, d) for v, d, _ in sections] == [("Unreleased", None), ("1.2.0", "2026-12-01"), ("1.1.0", "2026-11-01")]
    assert release.released(CHANGELOG)["1.1.0"][1] == "- older"  # link references are not part of a section
    assert release.newest_release(CHANGELOG) == "1.2.0"


def test_release_helper_command_line():
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "tools" / "release.py"), *args],
                              capture_output=True, text=True)

    assert run("version").stdout.strip() == VERSION
    assert run("check-tag", f"v{VERSION}").returncode == 0
    assert run("check-tag", "v0.0.0").returncode == 1
    notes = run("notes")
    assert notes.returncode == 0 and "### For readers (chapters)" in notes.stdout


# --- (b) one version, everywhere -------------------------------------------------------------------


def test_setup_cells_pin_the_package_version():
    chapters = notebooks.chapters()
    assert len(chapters) >= 13
    pinned = {}
    for path in chapters:
        cell = notebooks.first_code_cell(nbformat.read(path, as_version=4))
        match = re.search(r'^VERSION = "([^"]+)"', cell.source, re.M)
        assert match, f"{path.name}: no VERSION in the setup cell"
        pinned[path.name] = match[1]
    assert set(pinned.values()) == {VERSION}, pinned


def test_package_metadata_and_sources_agree():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)
    assert importlib.metadata.version("tutorial_lib") == VERSION, (
        "the installed metadata is stale: reinstall (.venv/bin/python -m pip install --no-deps -e .)")
    assert notebooks.package_version() == release.package_version() == release_version.package_version() == VERSION


def test_readme_installs_the_release():
    readme = (ROOT / "README.md").read_text()
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    refs = re.findall(r"git\+(\S+?)\.git@([\w.\-/]+)", readme)
    assert refs, "README has no git install line"
    assert set(refs) == {(url, f"v{VERSION}")}, refs  # a release tag, not a branch


def test_changelog_newest_release_is_the_package_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    sections = release.changelog_sections(changelog)
    assert sections[0][0] == "Unreleased"
    assert release.newest_release(changelog) == VERSION
    date, body = release.released(changelog)[VERSION]
    assert date is not None
    assert "### For readers (chapters)" in body and "### For library users (API)" in body


def test_the_book_shows_the_package_version():
    """The extension sets the substitution, footer and Sphinx version; intro.md and _config.yml use it."""
    config = types.SimpleNamespace(version="", release="", myst_substitutions={"other": "x"},
                                   html_theme_options={"extra_footer": "<p>kept</p>"})
    release_version.apply(config, release_version.package_version())
    assert config.version == config.release == VERSION
    assert config.myst_substitutions == {"other": "x", "tutorial_lib_version": VERSION}
    footer = config.html_theme_options["extra_footer"]
    assert footer.startswith("<p>kept</p>") and f"tutorial_lib {VERSION}" in footer
    release_version.apply(config, VERSION)  # idempotent
    assert config.html_theme_options["extra_footer"] == footer
    book_config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert book_config["sphinx"]["local_extensions"]["release_version"] == "book/_ext"
    assert "substitution" in book_config["parse"]["myst_enable_extensions"]
    assert "tutorial_lib {{ tutorial_lib_version }}" in (ROOT / "book" / "intro.md").read_text()


@pytest.mark.slow
def test_the_extension_renders_the_version(tmp_path: pathlib.Path):
    """A one-page Sphinx build with the book's theme and MyST: the page and its footer show the version."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'book' / '_ext')!r})\n"
        "extensions = ['myst_parser', 'release_version']\n"
        "myst_enable_extensions = ['substitution']\n"
        "html_theme = 'sphinx_book_theme'\n")
    (source / "index.md").write_text("# Title\n\nBuilt with tutorial_lib {{ tutorial_lib_version }}.\n")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(source),
                             str(tmp_path / "html")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    html = (tmp_path / "html" / "index.html").read_text()
    assert f"Built with tutorial_lib {VERSION}." in html
    assert f'<p class="tutorial-lib-version">tutorial_lib {VERSION}</p>' in html


# --- (c) the distributions -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory):
    """Wheel and sdist built by ``python -m build`` from a clean copy of the working tree (the files git
    tracks or would track), so no ignored build/ or egg-info can leak into them."""
    work = tmp_path_factory.mktemp("dist")
    source = colab_check.clean_copy(work / "source")
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--sdist", "--no-isolation",
                             "--outdir", str(work / "out"), str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    wheels, sdists = sorted((work / "out").glob("*.whl")), sorted((work / "out").glob("*.tar.gz"))
    assert [w.name for w in wheels] == [f"tutorial_lib-{VERSION}-py3-none-any.whl"]
    assert [s.name for s in sdists] == [f"tutorial_lib-{VERSION}.tar.gz"]
    return source, wheels[0], sdists[0]


@pytest.mark.slow
def test_wheel_holds_the_package_and_its_data(distributions):
    source, wheel, _ = distributions
    names = set(zipfile.ZipFile(wheel).namelist())
    package = {p.relative_to(source).as_posix() for p in (source / "tutorial_lib").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert {n for n in package if n.endswith(".py")} <= names
    checkpoints = {n for n in package if n.startswith("tutorial_lib/checkpoints/")}
    assert "tutorial_lib/checkpoints/metrics.json" in checkpoints
    assert any(n.endswith(".safetensors") for n in checkpoints)
    assert "tutorial_lib/results/experiments.json" in names  # the chapters' recorded results
    # every file of the package is shipped: checkpoints, results, assets (pyproject's package-data)
    assert package <= names, sorted(package - names)
    metadata = zipfile.ZipFile(wheel).read(f"tutorial_lib-{VERSION}.dist-info/METADATA").decode()
    assert f"\nVersion: {VERSION}\n" in metadata


@pytest.mark.slow
def test_wheel_holds_nothing_else(distributions):
    _, wheel, _ = distributions
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops == {"tutorial_lib", f"tutorial_lib-{VERSION}.dist-info"}, tops
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.slow
def test_sdist_holds_the_package_and_no_book(distributions):
    _, wheel, sdist = distributions
    prefix = f"tutorial_lib-{VERSION}/"
    with tarfile.open(sdist) as tar:
        names = {n[len(prefix):] for n in tar.getnames() if n.startswith(prefix)}
    wheel_package = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("tutorial_lib/")}
    assert wheel_package <= names  # the sdist rebuilds the same wheel
    assert {"pyproject.toml", "README.md", "CHANGELOG.md"} <= names
    for folder in ("tests/", "book/", "tools/", "data/", "benchmarks/", "build/", ".github/"):
        assert not [n for n in names if n.startswith(folder)], f"the sdist ships {folder}"

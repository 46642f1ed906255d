"""Show the ``tutorial_lib`` version the book was built with (README "Releases", CONTRIBUTING §9).

The package's one version number is ``__version__`` in ``tutorial_lib/__init__.py``; the chapters'
setup cells pin it, and the book says it too, from the same place, never typed:

* ``{{ tutorial_lib_version }}`` — a MyST substitution (used in ``book/intro.md``);
* the footer of every page reads "tutorial_lib <version>";
* Sphinx's ``version`` and ``release``.

The version is read from the source (as ``tools/notebooks.py`` does), not from whatever
``tutorial_lib`` happens to be installed, so the book states the library it documents.
"""
from __future__ import annotations

import pathlib
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from release import package_version  # noqa: E402  (tools/release.py: the version's one reader)

SUBSTITUTION = "tutorial_lib_version"


def footer_text(version: str) -> str:
    return f"tutorial_lib {version}"


def apply(config: Any, version: str) -> None:
    """Set the version on a Sphinx config (``config-inited``): substitution, footer, version/release."""
    config.version = config.release = version
    config.myst_substitutions = {**(getattr(config, "myst_substitutions", None) or {}),
                                 SUBSTITUTION: version}
    options = dict(getattr(config, "html_theme_options", None) or {})
    extra = options.get("extra_footer") or ""
    label = f'<p class="tutorial-lib-version">{footer_text(version)}</p>'
    options["extra_footer"] = f"{extra}{label}" if label not in extra else extra
    config.html_theme_options = options


def _config_inited(app, config) -> None:
    apply(config, package_version())


def setup(app):
    app.connect("config-inited", _config_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

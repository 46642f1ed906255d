"""Running a chapter twice gives identical outputs, compared the way nbval compares them.

``make test`` checks each chapter's *stored* outputs against one fresh run (nbval). This test
checks the other half of reproducibility: two fresh runs in a row, each in a new kernel and
executed exactly as ``tools/notebooks.py execute`` does (standard setup cell inserted, the
chapter's own folder as working directory), agree cell by cell after the sanitisation of
``tests/sanitize.cfg``. Like nbval it ignores cells tagged ``nbval-ignore-output``/``nbval-skip``,
output metadata, execution counts, images and widget model ids.

It executes a chapter twice, so it runs on one chapter (``DETERMINISM_CHAPTERS``; the first that
exists). The executed copies are written to a temporary folder for inspection when it fails.
"""
from __future__ import annotations

import configparser
import difflib
import json
import pathlib
import re
import sys
from typing import Dict, List, Tuple

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import notebooks  # noqa: E402  (tools/notebooks.py)

# Cheap chapters first; the first that exists is run twice.
DETERMINISM_CHAPTERS = ["book/segformer/08_overlap_patch_embed.ipynb", "book/deeplab/02_atrous_convolution.ipynb",
                        "book/basics/01_semantic_segmentation.ipynb"]
# nbval's own list of keys it never compares (nbval.plugin.IPyNbFile.skip_compare, without --nbdime).
SKIP_KEYS = {"metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
             "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg"}
SKIP_TAGS = {"nbval-ignore-output", "nbval-skip", "raises-exception"}


def sanitize_patterns() -> List[Tuple[str, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tests" / "sanitize.cfg")
    return [(parser[s]["regex"], parser[s]["replace"]) for s in parser.sections()]


PATTERNS = sanitize_patterns()


def sanitize(value: object) -> object:
    if isinstance(value, list):  # multi-line strings are stored as lists of lines
        value = "".join(value)
    if not isinstance(value, str):
        return value
    for regex, replace in PATTERNS:
        value = re.sub(regex, replace, value)
    return value


def comparable(nb: nbformat.NotebookNode) -> Dict[int, List[Dict[str, object]]]:
    """Per code cell (by index): its outputs reduced to what nbval compares, sanitised."""
    result = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or SKIP_TAGS & set(cell.metadata.get("tags", [])):
            continue
        outputs = []
        # like nbval, merge stream chunks of the same name: how text is split into messages
        # depends on timing, not on what the cell printed
        streams: Dict[str, Dict[str, object]] = {}
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                name = output.get("name", "stdout")
                if name in streams:
                    streams[name]["text"] = str(streams[name]["text"]) + output.get("text", "")
                    continue
                streams[name] = {"name": name, "text": output.get("text", "")}
                outputs.append(streams[name])
                continue
            reduced: Dict[str, object] = {}
            for key, value in output.items():
                if key in SKIP_KEYS:
                    continue
                if key == "data":
                    for mime, data in value.items():
                        if mime not in SKIP_KEYS:
                            reduced[mime] = sanitize(data)
                else:
                    reduced[key] = sanitize(value)
            outputs.append(reduced)
        for output in outputs:
            if "text" in output and set(output) == {"name", "text"}:
                output["text"] = sanitize(output["text"])
                del output["name"]  # nbval skips the stream name too
        result[index] = outputs
    return result


def run(path: pathlib.Path, out: pathlib.Path) -> nbformat.NotebookNode:
    """Execute like ``tools/notebooks.py execute`` but write the result to ``out``, not in place."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    notebooks.apply_setup(nb)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                   store_widget_state=True, record_timing=False).execute()
    notebooks.clean_metadata(nb)
    nbformat.write(nb, out)
    return nb


def chapter() -> pathlib.Path:
    for name in DETERMINISM_CHAPTERS:
        if (ROOT / name).exists():
            return ROOT / name
    chapters = notebooks.chapters()
    if not chapters:
        pytest.skip("no chapter notebooks yet")
    return chapters[0]


@pytest.mark.slow
def test_two_runs_give_identical_outputs(tmp_path: pathlib.Path) -> None:
    path = chapter()
    first = comparable(run(path, tmp_path / f"run1_{path.name}"))
    second = comparable(run(path, tmp_path / f"run2_{path.name}"))
    assert first.keys() == second.keys()
    assert any(first.values()), f"{path.name}: no compared outputs at all"
    differing = []
    for index in first:
        if first[index] != second[index]:
            a = json.dumps(first[index], indent=1, sort_keys=True).splitlines()
            b = json.dumps(second[index], indent=1, sort_keys=True).splitlines()
            diff = "\n".join(list(difflib.unified_diff(a, b, "run 1", "run 2", lineterm=""))[:30])
            differing.append(f"cell {index}:\n{diff}")
    assert not differing, (f"{path.relative_to(ROOT)} gives different outputs on two runs (copies in {tmp_path}):\n"
                           + "\n".join(differing))


def test_comparison_sees_differences() -> None:
    """The comparison is not vacuous: a changed number differs, a tagged cell or a sanitised address does not."""
    def nb(text: str, tags=()) -> nbformat.NotebookNode:
        cell = nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output("stream", name="stdout", text=text)])
        cell.metadata["tags"] = list(tags)
        return nbformat.v4.new_notebook(cells=[cell])

    assert comparable(nb("loss 0.512\n")) != comparable(nb("loss 0.513\n"))
    assert comparable(nb("at 0x7f3a2b1c9d00\n")) == comparable(nb("at 0x7f00deadbeef\n"))
    assert comparable(nb("1.2 s\n", ["nbval-ignore-output"])) == comparable(nb("3.4 s\n", ["nbval-ignore-output"]))

"""The Colab-like check: every chapter, run from the built wheel, outside the repository.

    python tools/colab_check.py [--emulate] [--keep] [NOTEBOOK ...]

1. Builds the wheel of ``tutorial_lib`` (``pip wheel``) from a clean copy of the working tree (the
   files git tracks or would track: no stale ``build/``), as a reader's ``pip install`` would get it.
2. Creates (once; refreshed when ``tools/colab-requirements.txt``, the package's dependencies or the
   Python version change) the virtual environment ``.venv-colab`` with only what Colab ships that the
   chapters rely on (that file says which), and installs the wheel into it — its declared
   dependencies included, nothing from the repository. Versions come from ``requirements.txt``
   (as pip constraints), the pinned working set of the repository's own ``.venv``.
3. Copies every chapter (or the NOTEBOOKs given) into an empty temporary folder, alone.
4. Runs nbval (with ``tests/nbval_numeric.py``) on the copies in a kernel of that environment, so
   each chapter must run there *and* reproduce its stored outputs. Cells tagged
   ``needs-transformers`` run, but their outputs are not compared (transformers is not installed).

``--students`` runs the course kit's student notebooks instead (built by
``tools/assignments.py`` from the chapters into the temporary folder): each runs top
to bottom, as "Run all" does, in a kernel of the same environment, with its exercise
stubs untouched. Every cell must run (no error output), and every check cell must
report its unfinished exercise ("not implemented"): the check cells catch the
check's ``AssertionError``, so an untouched stub is reported, never an error that
stops "Run all". Outputs are not compared (a student's run is its own).
``make test-students``; it prints the time of each notebook.

``--emulate`` runs the kernels as another machine would: no SIMD in ATen's kernels
(``ATEN_CPU_CAPABILITY=default``), oneDNN limited to SSE4.1 (``ONEDNN_MAX_CPU_ISA=SSE41``) and one
thread instead of the native count (``OMP_NUM_THREADS=1``; 2 when the native count is already 1).
The kernels train on the CPU (``TUTORIAL_LIB_DEVICE=cpu``): the stored outputs are the CPU's, also
on a machine with a GPU. Before running, the script asks that environment what it runs with (the
import location of ``tutorial_lib``, torch's CPU capability and thread count) and stops if it is not
what was asked for. ``make test`` uses ``--emulate``, so one run proves both portability promises.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-colab"
REQUIREMENTS = ROOT / "tools" / "colab-requirements.txt"
KERNEL = "tutorial-lib-colab-like"
sys.path.insert(0, str(ROOT / "tools"))
import notebooks  # noqa: E402  (tools/notebooks.py)


def emulated_environment() -> Dict[str, str]:
    """Environment variables that make torch pick another machine's kernels and thread count."""
    native = int(os.environ.get("OMP_NUM_THREADS") or 0) or (os.cpu_count() or 1)
    return {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
            "OMP_NUM_THREADS": "1" if native > 1 else "2"}


def run(*args: object, **kwargs) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, **kwargs)


def constraints(folder: pathlib.Path) -> pathlib.Path:
    """The ``name==version`` pins of ``requirements.txt`` as a pip constraints file."""
    pins = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    path = folder / "constraints.txt"
    path.write_text("\n".join(p for p in pins if "==" in p and not p.startswith("-")) + "\n")
    return path


def ensure_venv(constraint_file: pathlib.Path) -> pathlib.Path:
    """``.venv-colab``, rebuilt when what it was built from changes."""
    python = VENV / "bin" / "python"
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    digest = hashlib.sha256("\n".join([REQUIREMENTS.read_text(), constraint_file.read_text(), *declared,
                                       sys.version]).encode()).hexdigest()
    stamp = VENV / ".built-from-sha256"
    if not python.exists() or not stamp.exists() or stamp.read_text() != digest:
        shutil.rmtree(VENV, ignore_errors=True)
        run(sys.executable, "-m", "venv", VENV)
        run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", REQUIREMENTS,
            "-c", constraint_file)
        stamp.write_text(digest)
    return python


def clean_copy(folder: pathlib.Path) -> pathlib.Path:
    """The files git tracks or would track (uncommitted work included; ignored build output not)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    return folder


def build_wheel(source: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    out.mkdir(parents=True, exist_ok=True)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--no-build-isolation", "--wheel-dir", out, source, cwd=out)
    wheels = sorted(out.glob("tutorial_lib-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one tutorial_lib wheel in {out}, found {wheels}")
    return wheels[0]


def student_notebooks(
    chapters: List[pathlib.Path], kit: pathlib.Path
) -> List[pathlib.Path]:
    """The student notebooks of ``chapters``, built by ``tools/assignments.py`` into
    ``kit``."""
    import assignments  # tools/assignments.py

    written = assignments.write_assignments(chapters, kit)
    return [kit / "student" / rel for rel, _, _ in written]


#: what a check cell prints for an untouched stub (the predict checks too)
NOT_IMPLEMENTED = "not implemented"


def student_problems(nb) -> List[str]:
    """What went wrong in an executed student notebook: error outputs, and check
    cells that did not report their untouched exercise as not implemented."""
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"cell {index}: {out.ename}: {out.evalue}"[:400])
        tags = set(cell.metadata.get("tags", []))
        if tags & {"exercise-check", "predict-check"}:
            printed = "".join(
                o.get("text", "") for o in cell.outputs if o.output_type == "stream"
            )
            if NOT_IMPLEMENTED not in printed:
                problems.append(
                    f"cell {index} (a check) did not report its stub as not "
                    f"implemented: {printed[:200]!r}"
                )
    return problems


def run_students(paths: List[pathlib.Path], env: Dict[str, str]) -> int:
    """Execute each student notebook top to bottom in the Colab-like kernel (one
    at a time); return 1 if any cell failed."""
    import time

    import nbformat
    from nbclient import NotebookClient

    os.environ.update(env)  # the kernel inherits this process's environment
    for name in ("PYTHONPATH", "VIRTUAL_ENV"):
        os.environ.pop(name, None)
    failed, total = 0, 0.0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            kernel_name=KERNEL,
            timeout=600,
            allow_errors=True,
            resources={"metadata": {"path": str(path.parent)}},
        )
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
        total += seconds
        nbformat.write(nb, path)  # the run, for --keep
        problems = student_problems(nb)
        failed += bool(problems)
        verdict = "FAILED" if problems else "ran to the end"
        print(f"{path.name}: {verdict} in {seconds:.0f} s", flush=True)
        for problem in problems:
            print(f"    {problem}", flush=True)
    ran = len(paths) - failed
    print(f"{ran} of {len(paths)} student notebooks ran to the end ({total:.0f} s)")
    return 1 if failed else 0


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--emulate", action="store_true", help="run the kernels as another CPU would")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (prints its path)")
    parser.add_argument(
        "--students",
        action="store_true",
        help="run the course kit's student notebooks (stubs untouched)",
    )
    args = parser.parse_args(argv)
    every = notebooks.numbered_chapters() if args.students else notebooks.chapters()
    chapters = [p.resolve() for p in args.notebooks] or every
    if args.students:  # the course kit has the numbered chapters only
        chapters = [p for p in chapters if p in every]
        if not chapters:
            print("no chapter of the course kit among", *args.notebooks)
            return 0

    work = pathlib.Path(tempfile.mkdtemp(prefix="tutorial-lib-colab-"))
    try:
        pins = constraints(work)
        python = ensure_venv(pins)
        wheel = build_wheel(clean_copy(work / "source"), work / "dist")
        # The wheel's dependencies from the registry (skipped when present), then the wheel itself,
        # reinstalled every time: the chapters must run against exactly this build.
        run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", pins, wheel)
        run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--force-reinstall",
            "--no-deps", wheel)
        # A kernel of that environment, with no PYTHONPATH: it sees the wheel, not the repository.
        run(python, "-m", "ipykernel", "install", "--prefix", work / "jupyter", "--name", KERNEL,
            "--display-name", "Colab-like", "--env", "PYTHONPATH", "")
        folder = work / ("students" if args.students else "chapters")
        folder.mkdir()
        sources = (
            student_notebooks(chapters, work / "kit") if args.students else chapters
        )
        for path in sources:
            shutil.copy2(path, folder / path.name)
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        env["JUPYTER_PATH"] = str(work / "jupyter" / "share" / "jupyter")
        env["TUTORIAL_LIB_DEVICE"] = "cpu"  # the stored outputs are the CPU's, GPU or not
        if args.emulate:
            env.update(emulated_environment())
            print("emulating another CPU:", " ".join(f"{k}={v}" for k, v in emulated_environment().items()))
        # What the kernels will run with (same interpreter, same environment, same folder).
        probe = ("import torch, tutorial_lib; print(tutorial_lib.__file__); "
                 "print(torch.backends.cpu.get_cpu_capability()); print(torch.get_num_threads())")
        where, capability, threads = subprocess.run([str(python), "-c", probe], cwd=folder, env=env, check=True,
                                                    capture_output=True, text=True).stdout.split()
        if not where.startswith(str(VENV)):
            raise SystemExit(f"the Colab-like environment imports tutorial_lib from {where}, not from its wheel")
        if args.emulate and (capability != "DEFAULT" or threads != env["OMP_NUM_THREADS"]):
            raise SystemExit(f"emulation did not take: torch runs with {capability} kernels and {threads} threads")
        print(
            f"{folder.name} in {folder}; tutorial_lib from {where}; torch kernels "
            f"{capability}, {threads} threads",
            flush=True,
        )
        if args.students:
            return run_students([folder / p.name for p in sources], env)
        # pytest runs from the repository (for the plugin and the sanitize file); the notebooks and
        # the kernels live in the temporary folder.
        command = [sys.executable, "-m", "pytest", "-p", "tests.nbval_numeric", "--nbval",
                   "--nbval-kernel-name", KERNEL, "--nbval-sanitize-with", str(ROOT / "tests" / "sanitize.cfg"),
                   "--nbval-cell-timeout=600", "--nbval-without", "transformers", "-q", "-p", "no:cacheprovider",
                   "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(folder)]
        command += [str(folder / p.name) for p in chapters]
        print("+", " ".join(command), flush=True)
        return subprocess.run(command, cwd=ROOT, env=env).returncode
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

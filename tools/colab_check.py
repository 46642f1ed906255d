"""The Colab-like check: every chapter, run from the built wheel, outside the repository.

    python tools/colab_check.py [--emulate] [--keep] [NOTEBOOK ...]

1. Builds the wheel of ``tutorial_lib`` (``pip wheel``), as a reader's ``pip install`` would get it.
2. Creates (once; refreshed when ``tools/colab-requirements.txt`` changes) the virtual environment
   ``.venv-colab`` with only what Colab ships that the chapters rely on (that file says which), and
   installs the wheel into it — its declared dependencies included, nothing from the repository.
3. Copies every chapter (or the NOTEBOOKs given) into an empty temporary folder, alone.
4. Runs nbval (with ``tests/nbval_numeric.py``) on the copies in a kernel of that environment, so
   each chapter must run there *and* reproduce its stored outputs. Cells tagged
   ``needs-transformers`` run, but their outputs are not compared (transformers is not installed).

``--emulate`` runs the kernels as another machine would: no SIMD in ATen's kernels
(``ATEN_CPU_CAPABILITY=default``), oneDNN limited to SSE4.1 (``ONEDNN_MAX_CPU_ISA=SSE41``) and one
thread instead of the native count (``OMP_NUM_THREADS=1``; 2 when the native count is already 1).
``make test`` uses it, so one run proves both portability promises.
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


def ensure_venv() -> pathlib.Path:
    python = VENV / "bin" / "python"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".requirements-sha256"
    if not python.exists() or not stamp.exists() or stamp.read_text() != digest:
        shutil.rmtree(VENV, ignore_errors=True)
        run(sys.executable, "-m", "venv", VENV)
        run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", REQUIREMENTS)
        stamp.write_text(digest)
    return python


def build_wheel(out: pathlib.Path) -> pathlib.Path:
    out.mkdir(parents=True, exist_ok=True)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--no-build-isolation", "--wheel-dir", out, ROOT, cwd=out)
    wheels = sorted(out.glob("tutorial_lib-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one tutorial_lib wheel in {out}, found {wheels}")
    return wheels[0]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--emulate", action="store_true", help="run the kernels as another CPU would")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (prints its path)")
    args = parser.parse_args(argv)
    chapters = [p.resolve() for p in args.notebooks] or notebooks.chapters()

    work = pathlib.Path(tempfile.mkdtemp(prefix="tutorial-lib-colab-"))
    try:
        python = ensure_venv()
        wheel = build_wheel(work / "dist")
        # The wheel's dependencies from the registry (skipped when present), then the wheel itself,
        # reinstalled every time: the chapters must run against exactly this build.
        run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", REQUIREMENTS, wheel)
        run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--force-reinstall",
            "--no-deps", wheel)
        # A kernel of that environment, with no PYTHONPATH: it sees the wheel, not the repository.
        run(python, "-m", "ipykernel", "install", "--prefix", work / "jupyter", "--name", KERNEL,
            "--display-name", "Colab-like", "--env", "PYTHONPATH", "")
        folder = work / "chapters"
        folder.mkdir()
        for path in chapters:
            shutil.copy2(path, folder / path.name)
        where = subprocess.run([str(python), "-c", "import tutorial_lib; print(tutorial_lib.__file__)"],
                               cwd=folder, check=True, capture_output=True, text=True).stdout.strip()
        if not where.startswith(str(VENV)):
            raise SystemExit(f"the Colab-like environment imports tutorial_lib from {where}, not from its wheel")
        print(f"chapters in {folder}; tutorial_lib from {where}", flush=True)

        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        env["JUPYTER_PATH"] = str(work / "jupyter" / "share" / "jupyter")
        if args.emulate:
            env.update(emulated_environment())
            print("emulating another CPU:", " ".join(f"{k}={v}" for k, v in emulated_environment().items()))
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

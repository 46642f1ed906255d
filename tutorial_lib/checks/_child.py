"""The autograder's child process: run a submission's code, then (optionally) one check on it.

    python -m tutorial_lib.checks._child PAYLOAD.json RESULT.json READY

The parent (:mod:`tutorial_lib.checks.grade`) writes the payload, starts this module in a fresh
process with a time limit, and reads the result file. Nothing the submission does here can crash
the grader: an exception is recorded, an ``os._exit`` or a segfault leaves no result file (the
parent reports a crash), and an endless loop is killed by the parent's timeout.
"""
from __future__ import annotations

import contextlib
import io
import json
import linecache
import os
import sys
import time
import traceback
from typing import Any, Dict, List

_TAIL = 2000  # characters of the submission's own output kept for the report


def _describe(err: BaseException, tb: Any) -> str:
    """``Type: message (line N of <where>)`` for the innermost frame in submitted code."""
    frames = [f for f in traceback.extract_tb(tb) if f.filename.startswith("<submission")]
    where = ""
    if frames:
        label = frames[-1].filename[len("<submission "):-1]
        where = f" (line {frames[-1].lineno} of {label})"
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {message}{where}" if message else f"{type(err).__name__}{where}"


def _namespace() -> Dict[str, Any]:
    namespace: Dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    try:  # notebooks may call display(...) without importing it, as IPython provides it
        from IPython.display import display

        namespace["display"] = display
    except ImportError:  # pragma: no cover - IPython comes with jupyter
        pass
    return namespace


def run(payload: Dict[str, Any]) -> Dict[str, Any]:
    chunks: List[Dict[str, str]] = payload["chunks"]
    namespace = _namespace()
    errors: List[Dict[str, str]] = []
    output = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        for chunk in chunks:
            filename = f"<submission {chunk['label']}>"
            linecache.cache[filename] = (len(chunk["source"]), None, chunk["source"].splitlines(True), filename)
            try:
                exec(compile(chunk["source"], filename, "exec"), namespace)
            except BaseException as err:  # SystemExit and KeyboardInterrupt too: the submission's fault
                errors.append({"label": chunk["label"], "error": _describe(err, err.__traceback__)})
                if payload.get("stop_on_error", True):
                    break
    result: Dict[str, Any] = {
        "errors": errors,
        "seconds": time.perf_counter() - start,
        "defined": sorted(n for n in payload.get("symbols", []) if n in namespace),
        "output_tail": output.getvalue()[-_TAIL:],
    }
    name = payload.get("check")
    if name is None:
        return result

    from tutorial_lib.checks import REGISTRY  # imported before the submission ran (see main)

    check = REGISTRY[name]
    symbol = next((n for n in check.names if n in namespace), None)
    result["symbol"] = symbol
    if symbol is None:
        why = f"; the submission stopped early: {errors[0]['error']}" if errors else ""
        result.update(status="missing", feedback=f"{' or '.join(check.names)} is not defined{why}")
        return result
    feedback = io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(feedback):
            check.func(namespace[symbol])
        result.update(status="pass", feedback=feedback.getvalue().strip())
    except AssertionError as err:
        result.update(status="fail", feedback=str(err).strip() or feedback.getvalue().strip())
    except BaseException as err:  # the student's object broke the check itself (or exited)
        result.update(status="error", feedback=f"the check could not run: {_describe(err, err.__traceback__)}")
    result["check_seconds"] = time.perf_counter() - start
    return result


def main(argv: List[str]) -> int:
    payload_path, result_path, ready_path = argv
    with open(payload_path, encoding="utf-8") as fh:
        payload = json.load(fh)
    # Import torch and every check before the clock starts: the time limit is for the submission,
    # not for Python's start-up, and the submission's imports cannot shadow the checks' modules.
    import torch  # noqa: F401

    import tutorial_lib.checks  # noqa: F401
    from tutorial_lib.checks.grade import load_checks

    for path in payload.get("extra_checks", []):
        load_checks(path)
    open(ready_path, "w").close()
    result = run(payload)
    tmp = result_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    os.replace(tmp, result_path)
    sys.stdout.flush()
    # Leave at once: a thread the submission started must not keep this process (and the grader) waiting.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])

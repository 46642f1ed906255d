"""The submission's process, inside the sandbox: run the submission, answer calls on its objects.

    python -I /opt/grader/child.py CONFIG_JSON      (started by ``sandbox.Sandbox``)

It sees the student edition of ``tutorial_lib`` (``/opt/edition``; the graded components raise
``NotImplementedError``) and a private ``/tmp``, never a check, a reference result or the
instructor's seed. It reads requests and answers on the two pipes CONFIG names, in the format of ``wire.py``:
"run these cells", "call ``mean_iou`` with these tensors", "build ``Decoder(32, 24)``", "run
forward with these weights". Nothing it says is trusted: the grader compares the answers with
references it computed itself, and a submission that takes over this loop can only answer for
itself. This file is not imported by the grader.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import traceback
from typing import Any, Dict, List

CONFIG = json.loads(sys.argv[1]) if __name__ == "__main__" else {}
sys.path[:0] = [
    os.path.dirname(os.path.abspath(__file__)),
    CONFIG.get("edition", "/opt/edition"),
]
import wire  # noqa: E402  (the file beside this one)


def _limits(limits: Dict[str, int]) -> None:
    """Memory above what Python and torch take now, processes (threads count), file size, no core."""
    import resource

    with open("/proc/self/status") as fh:
        vm = next(
            int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:")
        )
    tasks = sum(
        len(os.listdir(f"/proc/{p}/task"))
        for p in os.listdir("/proc")
        if p.isdigit()
    )
    for name, value in (
        ("RLIMIT_AS", vm + limits["memory_mb"] * 2**20),
        ("RLIMIT_NPROC", tasks + limits["processes"]),
        ("RLIMIT_FSIZE", limits["file_mb"] * 2**20),
        ("RLIMIT_CORE", 0),
    ):
        resource.setrlimit(getattr(resource, name), (value, value))


def _describe(err: BaseException) -> Dict[str, str]:
    frames = [
        f
        for f in traceback.extract_tb(err.__traceback__)
        if f.filename.startswith("<submission")
    ]
    where = (
        f" (line {frames[-1].lineno} of {frames[-1].filename[12:-1]})"
        if frames
        else ""
    )
    text = str(err).strip()
    return {
        "type": type(err).__name__[:80],
        "message": text.splitlines()[0][:500] if text else "",
        "where": where,
    }


class Server:
    def __init__(self) -> None:
        import types

        # the submission's own module, as in Jupyter
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        self.namespace: Dict[str, Any] = main.__dict__
        self.namespace["__builtins__"] = __builtins__
        try:  # notebooks may call display(...) without importing it, as IPython provides it
            from IPython.display import display

            self.namespace["display"] = display
        except ImportError:  # pragma: no cover
            pass
        self.objects: Dict[int, Any] = {}

    def run(
        self, chunks: List[Dict[str, str]], stop_on_error: bool, symbols: List[str]
    ) -> Dict[str, Any]:
        errors: List[Dict[str, str]] = []
        for chunk in chunks:
            filename = f"<submission {chunk['label']}>"
            linecache.cache[filename] = (
                len(chunk["source"]),
                None,
                chunk["source"].splitlines(True),
                filename,
            )
            try:
                exec(compile(chunk["source"], filename, "exec"), self.namespace)
            # SystemExit and KeyboardInterrupt too: the submission's fault
            except BaseException as err:
                d = _describe(err)
                error = (
                    f"{d['type']}: {d['message']}" if d["message"] else d["type"]
                )
                errors.append(
                    {"label": chunk["label"], "error": error + d["where"]}
                )
                if stop_on_error:
                    break
        return {
            "errors": errors,
            "defined": sorted(n for n in symbols if n in self.namespace),
        }

    def kind(self, symbol: str) -> Dict[str, Any]:
        import torch

        obj = self.namespace.get(symbol)
        if isinstance(obj, type):
            return {
                "kind": "module_class"
                if issubclass(obj, torch.nn.Module)
                else "class"
            }
        return {"kind": "callable" if callable(obj) else "value"}

    def new(self, symbol: str, args: tuple, kwargs: dict) -> Dict[str, Any]:
        import torch

        module = self.namespace[symbol](*args, **kwargs)
        if not isinstance(module, torch.nn.Module):
            return {"opaque": type(module).__name__[:80]}
        handle = len(self.objects) + 1
        self.objects[handle] = module
        tree = []
        for name, m in module.named_modules():
            cls = type(m)
            torch_class = (
                cls.__name__
                if cls.__module__.startswith("torch.nn.")
                and getattr(torch.nn, cls.__name__, None) is cls
                else None
            )
            tree.append(
                {
                    "name": name,
                    "torch_class": torch_class,
                    "params": {
                        k: (None if v is None else v.detach().clone())
                        for k, v in m._parameters.items()
                    },
                    "requires_grad": {
                        k: bool(v.requires_grad)
                        for k, v in m._parameters.items()
                        if v is not None
                    },
                    "buffers": {
                        k: (None if v is None else v.detach().clone())
                        for k, v in m._buffers.items()
                    },
                    "persistent": [
                        k
                        for k in m._buffers
                        if k not in m._non_persistent_buffers_set
                    ],
                }
            )
        return {"handle": handle, "tree": tree, "training": bool(module.training)}

    def forward(
        self,
        handle: int,
        state: Dict[str, Any],
        training: bool,
        args: tuple,
        kwargs: dict,
    ) -> Any:
        import torch

        module = self.objects[handle]
        with torch.no_grad():
            own = dict(module.named_parameters())
            own.update(dict(module.named_buffers()))
            for (
                key,
                value,
            ) in state.items():  # the grader's copy may have been edited in place
                if (
                    key in own
                    and own[key] is not None
                    and own[key].shape == value.shape
                ):
                    own[key].copy_(value)
            module.train(training)
            return module(*args, **kwargs)


def main(limits: Dict[str, Any]) -> None:
    read_fd, write_fd = limits["fds"]
    import torch  # noqa: F401  (before the clock and the limits: start-up is not the submission's)

    import tutorial_lib  # noqa: F401

    _limits(limits)
    server = Server()
    wire.send(write_fd, "ready")
    while True:
        try:
            (size,) = wire.HEADER.unpack(_read(read_fd, wire.HEADER.size))
            request = wire.decode(_read(read_fd, size))
        except EOFError:
            os._exit(0)
        op = request.get("op")
        try:  # what the submission prints goes to /dev/null (the sandbox's stdout)
            if op == "run":
                value = server.run(
                    request["chunks"], request["stop_on_error"], request["symbols"]
                )
            elif op == "kind":
                value = server.kind(request["symbol"])
            elif op == "call":
                value = server.namespace[request["symbol"]](
                    *request["args"], **request["kwargs"]
                )
            elif op == "new":
                value = server.new(
                    request["symbol"], request["args"], request["kwargs"]
                )
            elif op == "forward":
                value = server.forward(
                    request["handle"],
                    request["state"],
                    request["training"],
                    request["args"],
                    request["kwargs"],
                )
            else:
                raise ValueError(f"unknown request {op!r}")
            reply = {"ok": True, "value": value}
        except BaseException as err:  # the student's exception, SystemExit included
            reply = {"ok": False, "error": _describe(err)}
        try:
            wire.send(write_fd, reply)
        except Exception as err:  # something in the answer cannot be sent
            wire.send(
                write_fd,
                {
                    "ok": False,
                    "error": {
                        "type": "TypeError",
                        "where": "",
                        "message": f"the result cannot be sent to the grader: {err}",
                    },
                },
            )


def _read(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


if __name__ == "__main__":
    main(CONFIG)
    os._exit(0)

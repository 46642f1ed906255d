"""The autograder's submission process: it runs a submission and answers calls on its objects.

    python -c "import sys; from tutorial_lib.checks._child import main; main(sys.argv[1:])" READ_FD WRITE_FD

The grader (:mod:`tutorial_lib.checks.grade`) starts this module in a fresh process with a clean
environment, its own copy of ``tutorial_lib`` in a private temporary folder, and talks to it over
two pipes. The submission runs in a fresh ``__main__`` module (this module is not ``__main__``),
and the request handlers are bound before it runs, so patching this module's classes changes
nothing. This process never sees a check, a reference result or the instructor's seed: it runs
the submission's code, then executes requests such as "call ``mean_iou`` with these tensors" or
"build ``Decoder(32, 24)``, load these weights, run forward on this input" and sends back what
the student's code returned. The checks compare those answers in
the grader's process, which never imports the submission, so nothing the submission does here
(replacing ``REGISTRY``'s checks, patching ``tutorial_lib``) can change a grade.

Messages to this process are pickles (it trusts the grader); replies are ``torch.save`` payloads
of tensors, numbers, strings and containers only, which the grader reads with
``torch.load(weights_only=True)``, so a reply cannot run code in the grader.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import linecache
import os
import pickle
import struct
import sys
import time
import traceback
from typing import Any, Dict, List, Optional

_TAIL = 2000  # characters of the submission's own output kept for the report
_HEADER = struct.Struct("<Q")


# -- framing (shared with the grader) ---------------------------------------------------------------
def send_frame(fd: int, data: bytes) -> None:
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def read_exact(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# -- what the submission returns, made safe to send -------------------------------------------------
def marshal(value: Any, depth: int = 0) -> Any:
    """Tensors, numbers, strings and containers as they are; NumPy as tagged tensors; others opaque."""
    import torch

    if depth > 20:
        return {"__opaque__": "a structure nested too deeply"}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone().as_subclass(torch.Tensor)  # a plain tensor, even from a subclass
    if isinstance(value, torch.Size):
        return {"__size__": [int(v) for v in value]}
    if isinstance(value, (list, tuple)):
        items = [marshal(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: marshal(v, depth + 1) for k, v in value.items()}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray) and value.dtype.kind in "biuf":
            return {"__ndarray__": torch.from_numpy(numpy.ascontiguousarray(value))}
        if isinstance(value, numpy.generic):
            return marshal(value.item(), depth + 1)
    return {"__opaque__": type(value).__name__}


def _describe(err: BaseException) -> Dict[str, str]:
    """The exception's type, message and ``(line N of <where>)`` of the innermost submitted frame."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.startswith("<submission")]
    where = ""
    if frames:
        label = frames[-1].filename[len("<submission "):-1]
        where = f" (line {frames[-1].lineno} of {label})"
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return {"type": type(err).__name__, "message": message, "where": where}


class Server:
    """The state of one submission: its namespace, the objects built for the checks, tripwires."""

    def __init__(self) -> None:
        import types

        main = types.ModuleType("__main__")  # the submission's own module, as in Jupyter
        sys.modules["__main__"] = main
        self.namespace: Dict[str, Any] = main.__dict__
        self.namespace["__builtins__"] = __builtins__
        try:  # notebooks may call display(...) without importing it, as IPython provides it
            from IPython.display import display

            self.namespace["display"] = display
        except ImportError:  # pragma: no cover - IPython comes with jupyter
            pass
        self.objects: Dict[int, Any] = {}
        self.forbidden: Dict[str, Any] = {}  # dotted path -> original object
        self.active: Optional[List[str]] = None  # the forbidden paths of the call being graded
        self.used: List[str] = []

    # Tripwires: while the grader calls the submission's object for a check, every use of the
    # library's own implementation of that exercise is recorded (and still works, so that the
    # report says why the score is 0 rather than showing a confusing failure).
    def install_tripwires(self, paths: List[str]) -> None:
        for path in paths:
            module_name, _, attr = path.rpartition(".")
            try:
                original = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError):
                continue
            self.forbidden[path] = original
            wire = self._wire(path, original)
            for name, module in list(sys.modules.items()):
                if name == "tutorial_lib" or name.startswith("tutorial_lib."):
                    for key, value in list(vars(module).items()):
                        if value is original:
                            setattr(module, key, wire)

    def _wire(self, path: str, original: Any) -> Any:
        server = self

        def note() -> None:
            if server.active is not None and path in server.active and path not in server.used:
                server.used.append(path)

        if isinstance(original, type):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                note()
                original.__init__(self, *args, **kwargs)

            return type(original.__name__, (original,), {"__init__": __init__, "__module__": original.__module__,
                                                         "__qualname__": original.__qualname__,
                                                         "__doc__": original.__doc__})

        def wire(*args: Any, **kwargs: Any) -> Any:
            note()
            return original(*args, **kwargs)

        wire.__name__ = getattr(original, "__name__", "wire")
        wire.__doc__ = getattr(original, "__doc__", None)
        return wire  # no __wrapped__: the original is not handed out

    # -- requests ---------------------------------------------------------------------------------
    def run(self, chunks: List[Dict[str, str]], stop_on_error: bool, symbols: List[str]) -> Dict[str, Any]:
        errors: List[Dict[str, str]] = []
        output = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            for chunk in chunks:
                filename = f"<submission {chunk['label']}>"
                linecache.cache[filename] = (len(chunk["source"]), None, chunk["source"].splitlines(True), filename)
                try:
                    exec(compile(chunk["source"], filename, "exec"), self.namespace)
                except BaseException as err:  # SystemExit and KeyboardInterrupt too: the submission's fault
                    d = _describe(err)
                    errors.append({"label": chunk["label"],
                                   "error": f"{d['type']}: {d['message']}{d['where']}" if d["message"]
                                   else f"{d['type']}{d['where']}"})
                    if stop_on_error:
                        break
        return {"errors": errors, "seconds": time.perf_counter() - start,
                "defined": sorted(n for n in symbols if n in self.namespace),
                "output_tail": output.getvalue()[-_TAIL:]}

    def kind(self, symbol: str) -> Dict[str, Any]:
        import torch

        if symbol not in self.namespace:
            return {"kind": "missing"}
        obj = self.namespace[symbol]
        if isinstance(obj, type):
            return {"kind": "module_class" if issubclass(obj, torch.nn.Module) else "class"}
        return {"kind": "callable" if callable(obj) else "value", "type": type(obj).__name__}

    def graded(self, forbid: List[str], action: Any) -> Any:
        self.active = forbid
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                return action()
        finally:
            self.active = None

    def new(self, symbol: str, args: tuple, kwargs: dict) -> Dict[str, Any]:
        import torch

        module = self.namespace[symbol](*args, **kwargs)
        if not isinstance(module, torch.nn.Module):
            return {"opaque": type(module).__name__}
        handle = len(self.objects) + 1
        self.objects[handle] = module
        tree = []
        for name, m in module.named_modules():
            cls = type(m)
            torch_class = cls.__name__ if cls.__module__.startswith("torch.nn.") and \
                getattr(torch.nn, cls.__name__, None) is cls else None
            tree.append({"name": name, "torch_class": torch_class, "class_name": cls.__name__,
                         "params": {k: (None if v is None else v.detach().clone()) for k, v in m._parameters.items()},
                         "requires_grad": {k: bool(v.requires_grad) for k, v in m._parameters.items()
                                           if v is not None},
                         "buffers": {k: (None if v is None else v.detach().clone()) for k, v in m._buffers.items()},
                         "persistent": [k for k in m._buffers if k not in m._non_persistent_buffers_set]})
        return {"handle": handle, "tree": tree, "training": bool(module.training)}

    def forward(self, handle: int, state: Dict[str, Any], training: bool, args: tuple, kwargs: dict) -> Any:
        import torch

        module = self.objects[handle]
        with torch.no_grad():
            own = dict(module.named_parameters())
            own.update(dict(module.named_buffers()))
            for key, value in state.items():  # the grader's copy may have been edited in place
                if key in own and own[key] is not None and own[key].shape == value.shape:
                    own[key].copy_(value)
            module.train(training)
            return module(*args, **kwargs)


def serve(read_fd: int, write_fd: int) -> None:
    import torch

    server = Server()
    # bound now, before the submission runs: patching Server afterwards changes nothing here
    install, run, kind, graded = server.install_tripwires, server.run, server.kind, server.graded
    new, forward, namespace = server.new, server.forward, server.namespace
    dumps = torch.save

    def reply(payload: Dict[str, Any]) -> None:
        buffer = io.BytesIO()
        try:
            dumps(payload, buffer)
        except Exception as err:  # something in the answer cannot be serialised
            buffer = io.BytesIO()
            dumps({"ok": False, "error": {"type": "TypeError", "where": "",
                                          "message": f"the result cannot be sent to the grader: {err}"}},
                  buffer)
        send_frame(write_fd, buffer.getvalue())

    while True:
        try:
            (size,) = _HEADER.unpack(read_exact(read_fd, _HEADER.size))
            request = pickle.loads(read_exact(read_fd, size))
        except EOFError:
            os._exit(0)
        op = request["op"]
        if op == "run":
            install(request["forbid"])
            reply({"ok": True, "value": run(request["chunks"], request["stop_on_error"], request["symbols"])})
            continue
        if op == "kind":
            reply({"ok": True, "value": kind(request["symbol"])})
            continue
        server.used = []
        try:
            if op == "call":
                value = graded(request["forbid"], lambda: namespace[request["symbol"]](
                    *request["args"], **request["kwargs"]))
            elif op == "new":
                value = graded(request["forbid"], lambda: new(
                    request["symbol"], request["args"], request["kwargs"]))
            elif op == "forward":
                value = graded(request["forbid"], lambda: forward(
                    request["handle"], request["state"], request["training"], request["args"], request["kwargs"]))
            else:
                raise ValueError(f"unknown request {op!r}")
            reply({"ok": True, "value": marshal(value), "used": list(server.used)})
        except BaseException as err:  # the student's exception, SystemExit included
            reply({"ok": False, "error": _describe(err), "used": list(server.used)})


def main(argv: List[str]) -> int:
    read_fd, write_fd = int(argv[0]), int(argv[1])
    # Import torch and the library before the clock starts: the time limit is for the submission,
    # not for Python's start-up.
    import torch  # noqa: F401

    import tutorial_lib  # noqa: F401
    import tutorial_lib.checks  # noqa: F401  (the notebooks import it; the grader never uses it here)

    send_frame(write_fd, b"ready")
    serve(read_fd, write_fd)
    # Leave at once at the end: a thread the submission started must not keep this process alive.
    os._exit(0)

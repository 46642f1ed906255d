"""The grader's side of the submission process: a connection and stand-ins for the student's objects.

A check receives a *stand-in* instead of the student's function or class. Calling the stand-in
sends the arguments to the submission's process (:mod:`tutorial_lib.checks._child`) and returns
what the student's code returned there; an exception the student's code raised is raised again
here with the same type and message (and the student's line in ``student_where``). A class
stand-in builds the module there and a local *skeleton* here: the same submodule tree (standard
``torch.nn`` classes keep their class, so ``isinstance(m, nn.Conv2d)`` works), parameter names,
shapes and values. The check reads and edits the skeleton's weights like a real module's;
``forward`` sends the current weights and the inputs, and returns the submission's output.
"""
from __future__ import annotations

import builtins
import ctypes
import hashlib
import io
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from ._child import _HEADER, send_frame
from ._core import GraderInterrupt

#: seconds the submission's process may take to start (import torch) before its time limit starts
STARTUP_LIMIT = 300.0

#: largest reply (bytes) the grader reads from the submission's process; a larger one kills it
MAX_REPLY_BYTES = int(os.environ.get("TUTORIAL_LIB_MAX_REPLY", 64 << 20))

#: environment variables the submission's process inherits (nothing else: no tokens, no secrets)
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "TUTORIAL_LIB_DEVICE", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "VIRTUAL_ENV")


class SubmissionTimeout(GraderInterrupt):
    """The submission's process exceeded its time limit (it has been killed)."""


class SubmissionCrashed(GraderInterrupt):
    """The submission's process died (``os._exit``, a segfault, a garbled reply)."""


class StudentError(Exception):
    """An exception of a type that is not a built-in one, raised by the submission's code."""


class Opaque:
    """Something the submission returned that is not a tensor, number, string or container."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


# -- the grader's own process: a subreaper, not dumpable; every stray descendant killed -------------
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
_GUARD: Optional[Dict[str, bool]] = None


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return False


def guard_grader() -> Dict[str, bool]:
    """Make this (the grader's) process a child subreaper and not dumpable, once; say what worked.

    A subreaper inherits every orphaned descendant, so a process that a submission forked and
    detached (double fork, ``setsid``) becomes this process's child and is killed after the
    submission (:func:`kill_strays`). Not dumpable: ``/proc/<grader>/environ`` and ``mem`` are closed
    to processes of the same user. Elsewhere (macOS) only the child's process group is killed.
    """
    global _GUARD
    if _GUARD is None:
        _GUARD = {"subreaper": _prctl(PR_SET_CHILD_SUBREAPER, 1) and os.path.isdir("/proc"),
                  "not_dumpable": _prctl(PR_SET_DUMPABLE, 0)}
    return _GUARD


def children(pid: Optional[int] = None) -> List[int]:
    """The processes whose parent is ``pid`` (this process), from ``/proc`` (empty without it)."""
    pid = os.getpid() if pid is None else pid
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def kill_strays(keep: "set[int]", rounds: int = 50) -> List[int]:
    """Kill and reap every child of this process not in ``keep``, until none is left; return them."""
    killed: List[int] = []
    for _ in range(rounds):
        strays = [p for p in children() if p not in keep]
        if not strays:
            break
        for pid in strays:
            with _quiet():
                os.kill(pid, signal.SIGKILL)
            with _quiet():
                os.waitpid(pid, 0)  # reaped: its own orphans are now this process's children
            killed.append(pid)
    return killed


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, value: Any, tb: Any) -> bool:
        return kind is not None and issubclass(kind, (ProcessLookupError, ChildProcessError, PermissionError))


def package_dir() -> str:
    """The folder of the ``tutorial_lib`` package the grader runs from."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep + "tutorial_lib"


def _package_files(root: str) -> List[str]:
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        files += [os.path.join(folder, n) for n in sorted(names) if not n.endswith((".pyc", ".pyo"))]
    return files


_SNAPSHOT: Optional[tempfile.TemporaryDirectory] = None


def library_snapshot() -> str:
    """A copy of the grader's ``tutorial_lib`` taken once per grader process, before any submission
    ran; each submission's process gets its own copy of this one (never the grader's files)."""
    global _SNAPSHOT
    if _SNAPSHOT is None:
        snapshot = tempfile.TemporaryDirectory(prefix="grade_lib_")
        shutil.copytree(package_dir(), os.path.join(snapshot.name, "tutorial_lib"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _SNAPSHOT = snapshot
    return os.path.join(_SNAPSHOT.name, "tutorial_lib")


def guarded_hashes() -> Dict[str, str]:
    """What must not change while a submission runs: the grader's own checks package
    (``tutorial_lib/checks``) and the library snapshot the submissions' processes copy."""
    hashes = {f"tutorial_lib/checks/{k}": v for k, v in package_hashes(os.path.join(package_dir(), "checks")).items()}
    hashes.update({f"the grader's library snapshot {library_snapshot()}: {k}": v
                   for k, v in package_hashes(library_snapshot()).items()})
    return hashes


def package_hashes(root: Optional[str] = None) -> Dict[str, str]:
    """SHA-256 of every file of the grader's ``tutorial_lib`` (``__pycache__`` aside), by relative path."""
    root = root or package_dir()
    hashes = {}
    for path in _package_files(root):
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            continue
        hashes[os.path.relpath(path, root)] = digest.hexdigest()
    return hashes


class Connection:
    """One submission process: started with a clean environment, killed on timeout or close.

    The process gets its own copy of the ``tutorial_lib`` package in its private temporary folder
    (deleted on close), copied from the grader's snapshot (:func:`library_snapshot`), never the
    grader's files, and runs in a new session. On close its process
    group is killed and, where the grader is a subreaper (Linux), every descendant left behind.
    """

    def __init__(self, max_reply: Optional[int] = None) -> None:
        self.proc: Optional[subprocess.Popen] = None
        self.deadline = float("inf")
        self.used: List[str] = []  # forbidden library objects the submission's code used
        self.max_reply = MAX_REPLY_BYTES if max_reply is None else int(max_reply)
        self.strays: List[int] = []  # descendants killed on close (forked and left behind)

    def start(self) -> None:
        guard_grader()
        self._keep = set(children())  # this process's own other children: never touched
        self._tmp = tempfile.TemporaryDirectory(prefix="grade_")
        lib = os.path.join(self._tmp.name, "lib")
        work = os.path.join(self._tmp.name, "work")
        os.mkdir(work)
        shutil.copytree(library_snapshot(), os.path.join(lib, "tutorial_lib"))
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
        env.update(MPLBACKEND="Agg", PYTHONHASHSEED="0", PYTHONPATH=lib, PYTHONNOUSERSITE="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tutorial_lib.checks._child import main; main(sys.argv[1:])",
             str(to_child_r), str(from_child_w)],
            cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, pass_fds=(to_child_r, from_child_w),
            start_new_session=True)  # a new session: on timeout its whole process group is killed
        os.close(to_child_r)
        os.close(from_child_w)
        self._w, self._r = to_child_w, from_child_r
        self.deadline = time.monotonic() + STARTUP_LIMIT
        if self._receive_raw(starting=True) != b"ready":
            self.close()
            raise SubmissionCrashed("the submission's process did not start")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        if self.proc is not None:
            with _quiet():
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group too, even after its leader exited
            self.proc.wait()
            if guard_grader()["subreaper"]:
                self.strays += kill_strays(self._keep)
            for fd in (self._w, self._r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._tmp.cleanup()
        self.proc = None

    def _read(self, size: int, starting: bool) -> bytes:
        chunks, left = [], size
        while left:
            wait = self.deadline - time.monotonic()
            ready = select.select([self._r], [], [], max(wait, 0))[0] if wait > 0 else []
            if not ready:
                self.close()
                if starting:
                    raise SubmissionCrashed(f"the submission's process did not start within {STARTUP_LIMIT:g} s")
                raise SubmissionTimeout("time limit exceeded")
            chunk = os.read(self._r, min(left, 1 << 20))
            if not chunk:
                code = self.proc.wait() if self.proc is not None else None
                self.close()
                raise SubmissionCrashed(f"the process died with exit code {code}")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _receive_raw(self, starting: bool = False) -> bytes:
        (size,) = _HEADER.unpack(self._read(_HEADER.size, starting))
        if size > self.max_reply:
            self.close()
            raise SubmissionCrashed(f"reply too large: the submission's process sent {size / 2**20:.0f} MiB, "
                                    f"more than the grader's limit of {self.max_reply / 2**20:g} MiB")
        return self._read(size, starting)

    def request(self, **message: Any) -> Any:
        """Send a request; return the value, or raise the student's exception as it was raised there."""
        if not self.alive:
            raise SubmissionCrashed("the submission's process is not running")
        try:
            send_frame(self._w, pickle.dumps(message))
        except OSError:
            self.close()
            raise SubmissionCrashed("the submission's process closed its pipe") from None
        raw = self._receive_raw()
        try:
            reply = torch.load(io.BytesIO(raw), weights_only=True)
        except Exception:
            self.close()
            raise SubmissionCrashed("the submission's process sent a reply that is not a grader message") from None
        if not isinstance(reply, dict):
            self.close()
            raise SubmissionCrashed("the submission's process sent a reply that is not a grader message")
        for path in reply.get("used", []) or []:
            if isinstance(path, str) and path not in self.used:
                self.used.append(path)
        if reply.get("ok"):
            return unmarshal(reply.get("value"))
        raise _rebuild(reply.get("error") or {})


def unmarshal(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__ndarray__"} and isinstance(value["__ndarray__"], torch.Tensor):
            return value["__ndarray__"].numpy()
        if set(value) == {"__opaque__"}:
            return Opaque(str(value["__opaque__"]))
        if set(value) == {"__size__"}:
            return torch.Size(value["__size__"])
        return {k: unmarshal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unmarshal(v) for v in value]
    if isinstance(value, tuple):
        return tuple(unmarshal(v) for v in value)
    return value


def _rebuild(error: Dict[str, str]) -> BaseException:
    name = str(error.get("type", "Exception"))
    message = str(error.get("message", ""))
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and name != "StopIteration":
        err: BaseException = cls(message) if message else cls()
    else:  # SystemExit, KeyboardInterrupt, torch or user-defined exceptions
        err = StudentError(f"{name}: {message}" if message else name)
    err.student_where = str(error.get("where", ""))  # type: ignore[attr-defined]
    err.student_type = name  # type: ignore[attr-defined]
    err.student_message = message  # type: ignore[attr-defined]
    return err


# -- stand-ins --------------------------------------------------------------------------------------
class RemoteFunction:
    """Calls the submission's function ``symbol`` in its process."""

    def __init__(self, conn: Connection, symbol: str, forbid: List[str]) -> None:
        self._conn, self._forbid = conn, forbid
        self.__name__ = self.__qualname__ = symbol

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._conn.request(op="call", symbol=self.__name__, args=args, kwargs=kwargs, forbid=self._forbid)

    def __repr__(self) -> str:
        return f"<submitted function {self.__name__}>"


class RemoteModule(nn.Module):
    """Base of the stand-in classes: builds the student's module there and its skeleton here."""

    _conn: Connection
    _symbol: str
    _forbid: List[str]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        built = cls._conn.request(op="new", symbol=cls._symbol, args=args, kwargs=kwargs, forbid=cls._forbid)
        if "opaque" in built:
            return Opaque(built["opaque"])
        self = super().__new__(cls)
        self._built = built
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        built = self.__dict__.pop("_built")
        super().__init__()
        self._handle = built["handle"]
        modules: Dict[str, nn.Module] = {"": self}
        for node in built["tree"]:
            if node["name"] == "":
                module = self
            else:
                cls = getattr(nn, node["torch_class"]) if node["torch_class"] else None
                module = cls.__new__(cls) if cls is not None else nn.Module()
                nn.Module.__init__(module)
                parent, _, leaf = node["name"].rpartition(".")
                modules[parent].add_module(leaf, module)
                modules[node["name"]] = module
            for key, value in node["params"].items():
                param = None if value is None else nn.Parameter(value, requires_grad=node["requires_grad"].get(key, True))
                module.register_parameter(key, param)
            for key, value in node["buffers"].items():
                module.register_buffer(key, value, persistent=key in node["persistent"])
        self.train(built["training"])

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        state = {k: v.detach() for k, v in self.state_dict(keep_vars=True).items()}
        return type(self)._conn.request(op="forward", handle=self._handle, state=state, training=self.training,
                                        args=args, kwargs=kwargs, forbid=type(self)._forbid)


def stand_in(conn: Connection, symbol: str, forbid: List[str]) -> Any:
    """The object a check receives for the submission's ``symbol``."""
    kind = conn.request(op="kind", symbol=symbol)["kind"]
    if kind == "module_class":
        return type(symbol, (RemoteModule,), {"_conn": conn, "_symbol": symbol, "_forbid": forbid,
                                              "__qualname__": symbol})
    if kind in {"callable", "class"}:
        return RemoteFunction(conn, symbol, forbid)
    return Opaque(kind)

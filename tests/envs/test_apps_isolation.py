"""The Apps sandbox's OS layer on its own: what a process in the jail can see and do (as if every Python-level check
had fallen), the seccomp program, and the refusal to downgrade the isolation level silently."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import distillgym  # noqa: F401
from distillgym.envs.apps import isolation
from distillgym.envs.apps.isolation import IsolationError, Jail, seccomp_program
from distillgym.envs.apps.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]

# Everything the probe tries, with real os calls: it is the worker after a total escape from the Python layers.
PROBE = textwrap.dedent("""
    import errno, json, os, socket, sys
    out = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "root": sorted(os.listdir("/")),
           "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()), "hostname": os.uname().nodename}
    def attempt(name, fn):
        try:
            out[name] = ["ok", repr(fn())[:200]]
        except OSError as exc:
            out[name] = ["denied", errno.errorcode.get(exc.errno, str(exc.errno))]
    paths = {PATHS}
    for key, path in paths.items():
        attempt("read:" + key, lambda path=path: open(path, "rb").read(100))
        attempt("list:" + key, lambda path=path: os.listdir(path))
    attempt("write_usr", lambda: open("/usr/pwned", "w"))
    attempt("write_prefix", lambda: open(os.path.join(sys.base_prefix, "pwned"), "w"))
    attempt("fork", os.fork)
    attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    attempt("unix_socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    attempt("kill_parent", lambda: os.kill({PARENT}, 0))
    attempt("kill_init", lambda: os.kill(1, 0) if os.getpid() != 1 else "is pid 1")
    attempt("setuid_root", lambda: os.setuid(0))
    attempt("chroot", lambda: os.chroot("/tmp"))
    def fill_tmp():
        with open("/tmp/fill", "wb") as f:
            for _ in range(64):
                f.write(b"x" * (1 << 20))
                f.flush()
    attempt("fill_tmp", fill_tmp)
    with open("/proc/self/status") as f:
        out["status"] = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
    print(json.dumps(out))
""")


def run_probe(level: str, paths: dict[str, str]) -> dict[str, Any]:
    code = PROBE.replace("{PATHS}", repr(paths)).replace("{PARENT}", str(os.getpid()))
    cmd, fds = Jail(level, tmpfs_mb=8).python(code)
    try:
        done = subprocess.run(cmd, env={}, capture_output=True, timeout=60, pass_fds=fds, cwd="/")
    finally:
        for fd in fds:
            os.close(fd)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def jailed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    secret = tmp_path_factory.mktemp("secret") / "token.txt"
    secret.write_text("hunter2")
    paths = {"passwd": "/etc/passwd", "source": str(REPO / "envs" / "apps" / "env.py"), "repo": str(REPO),
             "secret": str(secret), "root_home": "/root", "host_proc_1": "/proc/1/environ"}
    return run_probe("namespaces", paths)


def test_jail_runs_as_nobody_without_capabilities(jailed: dict[str, Any]) -> None:
    assert jailed["uid"] == 65534 and jailed["gid"] == 65534 and jailed["groups"] == []
    status = jailed["status"]
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2"
    assert jailed["setuid_root"][0] == "denied"


def test_jail_sees_only_the_interpreter_and_system_libraries(jailed: dict[str, Any]) -> None:
    assert set(jailed["root"]) <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "proc", "dev", "tmp",
                                   "root", "sandbox", "opt", "home"}, jailed["root"]
    assert "etc" not in jailed["root"] and "work" not in jailed["root"]
    for key in ("passwd", "source", "repo", "secret"):
        assert jailed[f"read:{key}"][0] == "denied" and jailed[f"list:{key}"][0] == "denied", key
    assert jailed["write_usr"][0] == "denied" and jailed["write_prefix"][0] == "denied"


def test_jail_has_its_own_pid_space_and_host_proc_is_hidden(jailed: dict[str, Any]) -> None:
    assert jailed["pids"] == [1]  # the worker is PID 1 of its namespace: nothing else runs there
    assert jailed["kill_parent"] == ["denied", "ESRCH"]  # the trainer is not even visible
    assert jailed["hostname"] == "sandbox"


def test_jail_cannot_start_processes_or_open_sockets(jailed: dict[str, Any]) -> None:
    assert jailed["fork"] == ["denied", "EPERM"]
    assert jailed["socket"] == ["denied", "EPERM"] and jailed["unix_socket"] == ["denied", "EPERM"]
    assert jailed["chroot"][0] == "denied"


def test_jail_tmp_is_private_and_size_limited(jailed: dict[str, Any]) -> None:
    assert jailed["fill_tmp"] == ["denied", "ENOSPC"]  # 8 MB tmpfs, 64 MB tried


def test_seccomp_program_refuses_the_listed_syscalls() -> None:
    program = seccomp_program("x86_64")
    assert program is not None and len(program) % 8 == 0
    ops = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    assert ops[0] == (0x20, 0, 0, 4) and ops[1][3] == 0xC000003E  # checks the architecture first
    denied = {ops[i][3] for i in range(len(ops) - 1) if ops[i][0] == 0x15 and ops[i + 1] == (0x06, 0, 0, 0x50001)}
    assert {57, 58, 56, 435, 41, 101, 165, 272, 308} <= denied  # fork vfork clone clone3 socket ptrace mount ...
    assert 0 not in denied and 59 not in denied  # read, execve stay
    assert ops[-1] == (0x06, 0, 0, 0x7FFF0000)  # allow the rest
    assert seccomp_program("sparc") is None


def test_missing_bubblewrap_is_a_clear_error_not_a_downgrade(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    monkeypatch.setattr(isolation, "_PROBED", {})
    with pytest.raises(IsolationError, match="apt-get install bubblewrap") as err:
        Sandbox(isolation="namespaces")
    assert "isolation='netns'" in str(err.value)
    with pytest.raises(IsolationError, match="bubblewrap"):
        gym.make("distillgym/Apps-v0")


def test_isolation_level_is_chosen_explicitly_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILLGYM_SANDBOX_ISOLATION", "bogus")
    with pytest.raises(IsolationError, match="bogus"):
        isolation.default_level()
    monkeypatch.setenv("DISTILLGYM_SANDBOX_ISOLATION", "netns")
    env = gym.make("distillgym/Apps-v0")
    try:
        _, info = env.reset(seed=0)
        assert info["apps"]["isolation"] == "netns"
        _, _, _, _, info = env.step("print(1)")
        assert info["apps"]["isolation"] == "netns"
    finally:
        env.close()
    monkeypatch.delenv("DISTILLGYM_SANDBOX_ISOLATION")
    env = gym.make("distillgym/Apps-v0")
    try:
        _, info = env.reset(seed=0)
        assert info["apps"]["isolation"] == "namespaces"
        _, reward, _, _, info = env.step(info["privileged"]["solution"])
        assert reward == 1.0 and info["apps"]["isolation"] == "namespaces"
    finally:
        env.close()
    with pytest.raises(ValueError, match="isolation must be one of"):
        gym.make("distillgym/Apps-v0", isolation="chroot")


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory anyone may read (pytest's tmp_path sits under a root-only directory)."""
    path = Path(tempfile.mkdtemp(prefix="distillgym-public-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_jail_for_a_non_root_trainer_uses_a_user_namespace(public_dir: Path) -> None:
    """A trainer that is not root: bubblewrap maps uid 65534 inside its own user namespace to the trainer's uid.
    Run here as nobody with the system's Python (the project's interpreter may not be readable by nobody)."""
    system_python, setpriv = Path("/usr/bin/python3"), shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None or not system_python.exists():
        pytest.skip("needs root (to become nobody), setpriv and /usr/bin/python3")
    tmp_path = public_dir
    shutil.copy(Path(isolation.__file__), tmp_path / "isolation.py")
    (tmp_path / "isolation.py").chmod(0o644)
    driver = textwrap.dedent(f"""
        import json, os, subprocess, sys
        sys.path.insert(0, {str(tmp_path)!r})
        import isolation
        isolation.require("namespaces")
        code = ("import json, os\\n"
                "try:\\n    os.fork()\\n    fork = 'ok'\\nexcept OSError as e:\\n    fork = e.errno\\n"
                "print(json.dumps({{'uid': os.getuid(), 'root': os.listdir('/'), 'fork': fork,"
                " 'userns': os.readlink('/proc/self/ns/user')}}))")
        cmd, fds = isolation.Jail("namespaces").python(code)
        done = subprocess.run(cmd, pass_fds=fds, capture_output=True, text=True, cwd="/", env={{}})
        print(json.dumps({{"out": done.stdout, "err": done.stderr[-500:], "outer_uid": os.getuid(),
                           "outer_userns": os.readlink("/proc/self/ns/user"), "cmd": cmd}}))
    """)
    done = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--", str(system_python),
                           "-I", "-c", driver], capture_output=True, text=True, cwd="/", timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["outer_uid"] == 65534 and "--unshare-user" in report["cmd"], report
    inner = json.loads(report["out"])
    assert inner["uid"] == 65534 and inner["fork"] == 1  # EPERM
    assert inner["userns"] != report["outer_userns"]  # its own user namespace
    assert "etc" not in inner["root"]

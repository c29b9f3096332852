"""The Apps-v0 sandbox: normal cells, the Python layer's attack suite, the parent's checks of a compromised worker,
and the OS jail on its own.

For every attack: it is contained (no side effect on the parent: files, env vars, sys.modules, sockets), the agent is
told why (message or output names the reason), nothing is raised out of `run`, and the next normal cell is served with
the right state. Attacks through the env (`env.step`) and their effects are in test_apps_escape.py.
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from distillgym.envs.apps import sandbox as sandbox_module
from distillgym.envs.apps.isolation import Jail
from distillgym.envs.apps.sandbox import Limits, RunResult, Sandbox, SandboxStartError
from distillgym.envs.apps.worker import guard as worker_guard
from distillgym.envs.apps.worker import policy as worker_policy
from tests.envs import apps_fake_factory

REPO = Path(__file__).resolve().parents[2]
FAKE = "tests.envs.apps_fake_factory:make_apis"
# Small limits keep the suite fast; wall time is generous so a busy CI core does not turn CPU limits into wall kills.
# All a worker's environment may hold: bubblewrap's PWD and Python's own C-locale coercion, nothing of the parent's.
WORKER_ENV = {b"PWD=/tmp", b"LC_CTYPE=C.UTF-8", b""}
LIMITS = Limits(cpu_s=0.5, wall_s=4.0, memory_mb=256, output_chars=2_000, max_code_chars=5_000)


def make_box(**limits: Any) -> Sandbox:
    fields = {**LIMITS.__dict__, **limits}
    return Sandbox(FAKE, Limits(**fields))


@pytest.fixture(scope="module")
def box() -> Sandbox:
    sb = make_box()
    sb.start()
    yield sb
    sb.close()


class Healthy:
    """Tracks the authoritative state across runs and checks that a normal cell is served after an attack."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.state: dict[str, Any] = {"counter": 0}

    def run(self, code: str) -> RunResult:
        result = self.box.run(code, self.state)  # never raises
        assert isinstance(result, RunResult)
        assert result.error is None or result.error in sandbox_module.ERROR_KINDS
        if result.committed:
            self.state = result.state
        else:
            assert result.state is self.state  # unchanged input state
        return result

    def check(self) -> None:
        before = self.state["counter"]
        result = self.run("n = apis.counter.increment(1)\nprint('counter', n)")
        assert result.ok and result.error is None, result
        assert result.output == f"counter {before + 1}\n"
        assert result.state["counter"] == before + 1


@pytest.fixture
def agent(box: Sandbox) -> Healthy:
    box.reset()
    return Healthy(box)


def told(result: RunResult, *needles: str) -> bool:
    text = (result.output + "\n" + result.message).lower()
    return all(n.lower() in text for n in needles)


# ------------------------------------------------------------------------------------------------ normal behaviour


def test_state_changes_come_back(agent: Healthy) -> None:
    r = agent.run("apis.counter.increment(5)\napis.supervisor.complete_task(answer='done')\nprint('ok')")
    assert r.ok and r.committed and r.output == "ok\n" and r.message == ""
    assert r.state["counter"] == 5
    assert r.state["_supervisor"] == {"completed": True, "answer": "done"}
    before = agent.state
    r = agent.run("print(apis.counter.value())")  # read-only: the worker says "same" instead of resending
    assert r.ok and r.committed and r.output == "5\n" and r.state is before
    agent.check()


def test_variables_persist_within_an_episode_and_reset_drops_them(agent: Healthy) -> None:
    assert agent.run("items = [1, 2]\ndef double(x):\n    return 2 * x").ok
    r = agent.run("print(double(sum(items)))")
    assert r.ok and r.output == "6\n"
    agent.box.reset()
    r = agent.run("print(items)")
    assert r.error == "exception" and "NameError" in r.output
    agent.check()


def test_last_expression_is_displayed(agent: Healthy) -> None:
    assert agent.run("x = {'a': 1}\nx").output == "{'a': 1}\n"
    assert agent.run("None").output == ""


def test_exception_gives_a_short_traceback_naming_the_line(agent: Healthy) -> None:
    code = "a = 1\ndef f(x):\n    return x / 0\nf(a)"
    r = agent.run(code)
    assert not r.ok and r.error == "exception" and r.committed
    assert 'File "<cell>", line 4, in <module>' in r.output
    assert 'File "<cell>", line 3, in f' in r.output and "return x / 0" in r.output
    assert r.output.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "worker.py" not in r.output and "sandbox" not in r.output.lower()
    assert r.message == "ZeroDivisionError: division by zero"
    assert r.render().count("ZeroDivisionError") == 1
    agent.check()


def test_exception_inside_an_api_keeps_earlier_changes(agent: Healthy) -> None:
    r = agent.run("apis.counter.increment(2)\napis.counter.increment(-1)")
    assert r.error == "exception" and "by must be a positive int" in r.output
    assert r.committed and r.state["counter"] == 2  # like a real interpreter, the first call happened
    assert "apps_fake_factory" not in r.output  # app frames are not shown
    agent.check()


def test_syntax_error(agent: Healthy) -> None:
    r = agent.run("x = (1,\nprint(x)")
    assert r.error == "syntax" and not r.committed and "SyntaxError" in r.output and 'line 1' in r.output
    agent.check()


def test_output_cap(agent: Healthy) -> None:
    r = agent.run("print('x' * 10**6)\napis.counter.increment(1)")
    assert r.ok and r.error == "output_limit" and r.truncated and r.committed
    assert len(r.output) < LIMITS.output_chars + 200 and "output truncated" in r.output
    assert told(r, "only the first 2,000")
    agent.check()


def test_lone_surrogates_survive(agent: Healthy) -> None:
    r = agent.run("print('a\\ud800b')\napis.counter.add_item('x\\udfffy')")
    assert r.ok and r.output == "a?b\n1\n"  # output is clean text; the state keeps the exact str
    assert r.state["items"] == ["x\udfffy"]
    agent.check()


def test_real_apps_factory() -> None:
    """The default factory (distillgym.envs.apps.api:make_apis) loads and serves a cell under the lock-down."""
    with Sandbox(limits=LIMITS) as sb:
        r = sb.run("apps = apis.api_docs.show_app_descriptions()\nprint(len(apps) > 0)", {})
        assert r.ok and r.output == "True\n", r.render()


def test_too_long_code_is_not_run(agent: Healthy) -> None:
    r = agent.run("x = 1\n" * 2000)
    assert r.error == "too_long" and told(r, "limit") and not r.committed
    agent.check()


def test_ordinary_code_using_the_allowed_modules(agent: Healthy) -> None:
    code = textwrap.dedent("""
        import datetime, json, re, math, statistics, random, itertools, functools, collections, decimal, string
        from collections import Counter
        from typing import List, Optional
        d = datetime.datetime.strptime("2024-03-05", "%Y-%m-%d") + datetime.timedelta(days=1)
        class Box:
            def __init__(self, v: int) -> None:
                self.v = v
            def __repr__(self) -> str:
                return f"Box({self.v})"
        class Err(ValueError):
            def __init__(self, msg):
                super().__init__(msg)
        try:
            raise Err("e")
        except ValueError as e:
            caught = type(e).__name__
        xs: List[Optional[int]] = [3, 1, 2]
        print(d.date().isoformat(), json.dumps(sorted(xs)), re.findall(r"\\d", "a1b2"), math.floor(2.5),
              statistics.mean(xs), random.Random(1).randint(1, 1), list(itertools.pairwise([1, 2, 3])),
              functools.reduce(lambda a, b: a + b, xs), Counter("aab").most_common(1), decimal.Decimal("0.1") * 3,
              string.Template("$x").substitute(x="t"), "{:>4}|{name}".format(7, name="n"), Box(2), caught,
              "%s-%d" % ("a", 1), getattr(Box(3), "v"), hasattr(Box(3), "w"))
    """)
    r = agent.run(code)
    assert r.ok, r.render()
    expected = "2024-03-06 [1, 2, 3] ['1', '2'] 2 2 1 [(1, 2), (2, 3)] 6 [('a', 2)] 0.3 t    7|n Box(2)"
    assert r.output.startswith(expected)
    assert r.output.rstrip().endswith("Err a-1 3 False")
    agent.check()


def test_factory_errors() -> None:
    with pytest.raises(SandboxStartError, match="ModuleNotFoundError"):
        Sandbox("tests.envs.no_such_module:make_apis", LIMITS)
    with pytest.raises(SandboxStartError, match=r"factory failed.*always fails"):
        Sandbox("tests.envs.apps_fake_factory:broken_factory", LIMITS)
    with pytest.raises(ValueError, match="module:function"):
        Sandbox("no_colon", LIMITS)


# ---------------------------------------------------------------------------------------------- imports and files


@pytest.mark.parametrize("module", ["os", "subprocess", "socket", "sys", "importlib", "ctypes", "pickle", "builtins",
                                    "gc", "inspect", "threading", "signal", "os.path", "json.decoder", "_thread"])
def test_imports_outside_the_allow_list(agent: Healthy, module: str) -> None:
    r = agent.run(f"import {module}")
    assert not r.ok and r.error == "forbidden" and not r.restarted
    assert told(r, module, "not allowed")
    agent.check()


def test_import_error_can_be_caught_like_python(agent: Healthy) -> None:
    r = agent.run("try:\n    import numpy\nexcept ImportError as e:\n    print('fallback:', e)")
    assert r.ok and "fallback: import of 'numpy' is not allowed; allowed modules: " in r.output


def test_dunder_import(agent: Healthy) -> None:
    r = agent.run("__import__('os').system('touch /tmp/pwned')")
    assert r.error == "forbidden" and told(r, "__import__", "not allowed")
    agent.check()


def test_modules_are_views_without_submodules(agent: Healthy) -> None:
    for code in ["import re\nre.enum.sys.modules", "import statistics\nstatistics.sys", "import random\nrandom.os",
                 "from string import Formatter", "import operator\noperator.attrgetter('__class__')",
                 "import functools\nfunctools.update_wrapper"]:
        r = agent.run(code)
        assert not r.ok and ("has no attribute" in r.output or "cannot import name" in r.output
                             or r.error == "forbidden"), (code, r)
    r = agent.run("import json\njson.dumps = None")
    assert r.error == "exception" and "read-only" in r.output
    agent.check()


def test_patching_json_does_not_reach_the_protocol(agent: Healthy) -> None:
    r = agent.run("import json\njson.JSONEncoder.encode = lambda self, o: '{}'\n"
                  "json.JSONEncoder.iterencode = lambda self, o, _one_shot=False: ['{}']\n"
                  "json.JSONDecoder.decode = lambda self, s: {}\napis.counter.increment(3)")
    assert r.ok and r.state["counter"] == 3
    agent.check()  # same episode, same worker: its own JSON is bound to the C accelerators
    assert agent.run("import json\njson.dumps({'a': 1})").output == "'{}'\n"  # the cell only fooled itself


def test_module_views_cannot_be_reinitialised(agent: Healthy) -> None:
    r = agent.run("import json\njson.__init__('json', {'dumps': print})")
    assert r.error == "exception" and "read-only" in r.output
    r = agent.run("__name__ = 'json'")
    assert r.error == "forbidden"
    agent.check()


def test_open_files(agent: Healthy, tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    for code in ["open('/etc/passwd').read()", f"open({str(target)!r}, 'w').write('pwned')"]:
        r = agent.run(code)
        assert r.error == "forbidden" and told(r, "open", "not allowed")
        agent.check()
    assert not target.exists()


def test_apis_in_the_cell_hold_names_only(agent: Healthy) -> None:
    """`apis` in the worker is a proxy: names and docs, no state; unknown names fail like the real apps."""
    r = agent.run("print(dir(apis), dir(apis.counter), apis.counter.increment.__doc__)\n"
                  "print(hasattr(apis, 'nope'), hasattr(apis.counter, 'nope'))\napis.counter.nope()")
    assert r.error == "exception" and "ApiAttributeError: App 'counter' has no api named 'nope'" in r.output
    assert "['counter', 'debug', 'supervisor'] ['add_item', 'increment', 'value'] Add `by`" in r.output
    assert "False False" in r.output
    r = agent.run("try:\n    apis.counter.increment(0)\nexcept ValueError as e:\n    print('caught', e)")
    assert r.ok and r.output == "caught by must be a positive int\n"
    agent.check()


# -------------------------------------------------------------------------------------------- introspection walks


@pytest.mark.parametrize("code", [
    "().__class__.__base__.__subclasses__()",
    "[c for c in ().__class__.__bases__[0].__subclasses__()]",
    "(lambda: 0).__globals__",
    "def g():\n    yield 1\nit = g()\nit.gi_frame.f_back",
    "try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__.tb_frame.f_globals",
    "apis.counter._state",
    "print.__self__",
    "x = __builtins__",
    "match 1:\n    case int(__class__=c):\n        print(c)",
    "match '{0.__class__}':\n    case str(format=f):\n        print(f(1))",
    "class X:\n    def __del__(self):\n        pass",
    "async def c():\n    pass\nc().cr_frame",
    "from json import _default_encoder",
])
def test_static_walks_are_rejected_before_running(agent: Healthy, code: str) -> None:
    r = agent.run("apis.counter.increment(100)\n" + code)
    assert r.error == "forbidden" and not r.committed and r.output == ""
    assert told(r, "not run", "not allowed") or told(r, "not run", "blocked")
    agent.check()  # counter went up by 1 only: the first line never ran


@pytest.mark.parametrize("code, needle", [
    ("getattr((), '__class__')", "__class__"),
    ("getattr((), '_' + '_class__')", "__class__"),
    ("hasattr(apis, '_state')", "_state"),
    ("setattr(apis, '__class__', int)", "__class__"),
    ("def g():\n    yield 1\ngetattr(g(), 'gi_frame')", "gi_frame"),
    ("vars()", "vars"),
    ("globals()", "globals"),
    ("locals()", "locals"),
    ("'{0.__class__}'.format(1)", "__class__"),
    ("'{0[0].__class__}'.format([1])", "__class__"),
    ("'{0:{1.__class__}}'.format(1, 2)", "__class__"),
    ("str.format('{0.__globals__}', lambda: 0)", "__globals__"),
    ("'{x.__class__}'.format_map({'x': 1})", "__class__"),
    ("getattr('{0.__class__}', 'format')(1)", "__class__"),
    ("f = str.format\nf('{0.__class__}', 1)", "__class__"),
    ("class S(str):\n    pass\nsuper(S, S('{0.__class__}')).format(1)", "__class__"),
    ("class S(str):\n    pass\ngetattr(super(S, S('{0.__class__}')), 'format')(1)", "__class__"),
    ("class S(str):\n    pass\nsuper(S, S).format('{0.__class__}', 1)", "__class__"),
])
def test_runtime_walks_are_rejected(agent: Healthy, code: str, needle: str) -> None:
    r = agent.run(code)
    assert r.error == "forbidden" and told(r, needle, "not allowed")
    agent.check()


@pytest.mark.parametrize("code, needle", [
    ("C = type('C', (), {'__match_args__': ('__class__',)})", "__match_args__"),
    ("C = type('C', (), {'__reduce_ex__': lambda self, p: (print, ())})", "__reduce_ex__"),
    ("C = type('C', (), {'__getattr__': lambda self, n: n})", "__getattr__"),
    ("class M(type):\n    pass\nC = M('C', (), {'__match_args__': ('__globals__',)})", "__match_args__"),
    ("M = type(type)\nC = M('C', (), {'__del__': print})", "__del__"),
    ("import collections.abc\nM = type(collections.abc.Mapping)\nC = M('C', (), {'__match_args__': ('__class__',)})",
     "__match_args__"),
    ("class C(metaclass=type):\n    pass\nD = type(C)('D', (C,), {'__init_subclass__': print})", "__init_subclass__"),
])
def test_runtime_classes_cannot_set_what_a_class_statement_may_not(agent: Healthy, code: str, needle: str) -> None:
    """type(name, bases, ns) (however `type` or a metaclass was reached) is vetted like a class statement: no
    `__match_args__` to make a class pattern read blocked attributes, no reducers, hooks or finalizers."""
    r = agent.run(code)
    assert r.error == "forbidden" and told(r, needle, "may not define"), r
    agent.check()


@pytest.mark.parametrize("code", [
    "class M(type):\n    pass\nM.mro(M)",
    "class M(type):\n    pass\ngetattr(M, 'mro')(M)",
    "import typing\ntyping.get_origin(typing.Type[int])",
    "from typing import Type",
])
def test_the_real_type_is_out_of_reach(agent: Healthy, code: str) -> None:
    r = agent.run(code)
    assert not r.ok and (r.error == "forbidden" or told(r, "cannot import name") or told(r, "has no attribute")), r
    assert "<class 'type'>" not in r.output
    agent.check()


def test_nul_bytes_never_reach_the_observation(agent: Healthy) -> None:
    r = agent.run("print('a\\x00b')\nraise ValueError('c\\x00d')")
    assert "\x00" not in r.render() and "a\\x00b" in r.output and "c\\x00d" in r.message


def test_type_still_works_for_ordinary_code(agent: Healthy) -> None:
    code = textwrap.dedent("""
        class P:
            def __init__(self, x):
                self.x = x
        C = type('C', (P,), {'y': 2, '__repr__': lambda self: 'C!'})
        c = C(1)
        class M(type):
            pass
        class Q(metaclass=M):
            z = 3
        match 5:
            case int(v):
                print('int', v)
        match c:
            case P(x=1):
                print('P x=1')
        print(type(c) is C, type(1) is int, isinstance(int, type), isinstance(1, type), issubclass(M, type),
              type(Q) is M, Q.z, c.x, c.y, repr(c), type(type(1)) == type, type(type(1)))
    """)
    r = agent.run(code)
    assert r.ok, r.render()
    assert r.output == "int 5\nP x=1\nTrue True True False True True 3 1 2 C! True <class 'type'>\n"


def test_copy_copies_plain_data_only(agent: Healthy) -> None:
    r = agent.run("import copy\nd = {'a': [1, {2}], 'b': (3, [4])}\ne = copy.deepcopy(d)\ne['a'][0] = 9\n"
                  "print(d, copy.copy([1, 2]), copy.deepcopy(d, {}) == d)")
    assert r.ok and r.output == "{'a': [1, {2}], 'b': (3, [4])} [1, 2] True\n", r.render()
    for code in ["import copy\nmemo = {}\ncopy.deepcopy(apis, memo)", "import copy\ncopy.copy(apis.counter)",
                 "import copy\nclass X:\n    pass\ncopy.deepcopy(X())"]:
        r = agent.run(code)
        assert r.error == "exception" and told(r, "plain data only"), (code, r)
    agent.check()


def test_sys_getframe_unreachable(agent: Healthy) -> None:
    r = agent.run("import sys\nsys._getframe(0).f_globals")
    assert r.error == "forbidden"
    agent.check()


# ------------------------------------------------------------------------------------ code execution and builtins


@pytest.mark.parametrize("code, needle", [
    ("exec('import os')", "exec"),
    ("eval('1 + 1')", "eval"),
    ("compile('1', 'x', 'exec')", "compile"),
    ("input()", "input"),
    ("breakpoint()", "breakpoint"),
    ("help(len)", "help"),
    ("memoryview(b'x')", "memoryview"),
    ("import collections\ncollections.namedtuple('P', 'x')", "namedtuple"),
])
def test_denied_builtins(agent: Healthy, code: str, needle: str) -> None:
    r = agent.run(code)
    assert not r.ok and told(r, needle)
    agent.check()


@pytest.mark.parametrize("code, needle", [
    ("raise SystemExit(3)", "SystemExit"),
    ("exit()", "SystemExit"),
    ("quit()", "SystemExit"),
    ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    ("raise BaseException('x')", "BaseException"),
    ("raise GeneratorExit", "GeneratorExit"),
])
def test_exiting_does_not_kill_the_worker(agent: Healthy, code: str, needle: str) -> None:
    pid = agent.box.worker_pid
    r = agent.run(code)
    assert r.error == "exception" and told(r, needle) and not r.restarted
    agent.check()
    assert agent.box.worker_pid == pid


# ------------------------------------------------------------------------------------------------ resource attacks


@pytest.mark.parametrize("code", [
    "while True:\n    pass",
    "x = 0\nwhile True:\n    try:\n        x += 1\n    except BaseException:\n        pass",
    "sum(i * i for i in range(10**12))",
])
def test_cpu_burn_is_stopped(agent: Healthy, code: str) -> None:
    r = agent.run("apis.counter.increment(100)\n" + code)  # the CPU timer or, on a loaded machine, the wall kill
    assert r.error == "timeout" and not r.committed and told(r, "stopped", "time")
    assert agent.state["counter"] == 0
    agent.check()


def test_code_stuck_in_c_is_killed_on_wall_time(agent: Healthy) -> None:
    """A loop inside C (no eval loop, no signal checks) ignores the CPU timer: only the wall-time kill stops it."""
    pid = agent.box.worker_pid
    r = agent.run("import itertools\nany(itertools.repeat(0))")
    assert r.error == "timeout" and r.restarted and told(r, "wall time")
    agent.check()
    assert agent.box.worker_pid != pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.parametrize("code", [
    "x = 'a' * 10**10",
    "x = [0] * 10**9",
    "x = []\nwhile True:\n    x.append('a' * 10**6)",
    "x = bytearray(10**9)",
])
def test_memory_bombs(agent: Healthy, code: str) -> None:
    """What is guaranteed: contained, nothing kept, the interpreter replaced. Which limit ends a slow bomb (memory,
    or the CPU timer or wall kill on a loaded machine) is a race, so the kind is one of them."""
    r = agent.run("apis.counter.increment(100)\n" + code)
    assert r.error in ("memory", "timeout") and not r.committed and told(r, "kept")
    if r.error == "memory":
        assert r.restarted and told(r, "memory", "256 MB")
    assert agent.state["counter"] == 0
    agent.check()


def test_memory_error_caught_by_the_cell_is_fine(agent: Healthy) -> None:
    r = agent.run("try:\n    x = 'a' * 10**10\nexcept MemoryError:\n    print('too big')")
    assert r.ok and r.output == "too big\n"


@pytest.mark.parametrize("code, kind", [
    ("def f():\n    return f()\nf()", "exception"),
    ("x = []\nfor i in range(10**5):\n    x = [x]\nprint(x)", "exception"),
    ("x = " + "[" * 250 + "]" * 250, "syntax"),
    ("x = " + "(" * 2000 + ")" * 2000, "syntax"),
    ("x = " + "-" * 4000 + "1", "syntax"),
])
def test_recursion_bombs(agent: Healthy, code: str, kind: str) -> None:
    r = agent.run(code)
    assert r.error == kind, r
    if kind == "exception":
        assert "RecursionError" in r.output
    agent.check()


def test_deeply_nested_arguments_never_reach_the_state(agent: Healthy) -> None:
    r = agent.run("x = []\nfor i in range(10**4):\n    x = [x]\napis.counter.add_item(x)")
    assert r.error == "exception" and told(r, "plain data") and "items" not in agent.state
    r = agent.run("x = []\nfor i in range(100):\n    x = [x]\napis.counter.add_item(x)")  # sent, refused there
    assert r.error == "exception" and told(r, "ApiError", "nested too deeply") and "items" not in agent.state
    agent.check()


def test_state_size_cap() -> None:
    with make_box(state_mb=1.0) as sb:
        h = Healthy(sb)
        r = h.run("apis.debug.grow_state(2 * 2**20)")
        assert r.error == "state_limit" and not r.committed and told(r, "too large")
        h.check()


def test_huge_prints(agent: Healthy) -> None:
    r = agent.run("for i in range(10**5):\n    print(i)")
    assert r.error == "output_limit" and r.truncated and r.output.startswith("0\n1\n2\n")
    agent.check()


# --------------------------------------------------------------------------------------- processes, env, network


def test_fork_and_system_are_blocked(agent: Healthy, tmp_path: Path) -> None:
    target = tmp_path / "forked"
    r = agent.run(f"import os\nos.fork()\nos.system('touch {target}')")
    assert r.error == "forbidden"
    r = agent.run("import subprocess\nsubprocess.Popen(['sh'])")
    assert r.error == "forbidden"
    agent.check()
    assert not target.exists()


@pytest.mark.parametrize("event, args", [
    ("open", ("/etc/passwd", "r", 0)), ("os.system", (b"sh",)), ("os.fork", ()), ("os.forkpty", ()),
    ("os.posix_spawn", (b"/bin/sh", [], {})), ("os.exec", (b"/bin/sh", [], {})), ("os.spawn", (0, b"sh", [], {})),
    ("os.kill", (1, 9)), ("os.killpg", (1, 9)), ("os.remove", ("x", None)), ("os.rename", ("a", "b", None, None)),
    ("os.mkdir", ("d", 0o777, None)), ("os.chdir", ("/",)), ("os.listdir", (".",)), ("os.scandir", (".",)),
    ("os.putenv", ("A", "B")), ("subprocess.Popen", ("sh", [], None, None)), ("socket.connect", (None, ("h", 1))),
    ("socket.__new__", (None, 2, 1, 0)), ("socket.getaddrinfo", ("h", 1, 0, 0, 0)), ("ctypes.dlopen", ("libc",)),
    ("import", ("os", None, [], [], [])), ("exec", (None,)), ("code.__new__", ()), ("function.__new__", (None,)),
    ("sys._getframe", ()), ("sys._current_frames", ()), ("sys.settrace", ()), ("sys.setprofile", ()),
    ("object.__getattr__", (None, "__code__")), ("object.__setattr__", (int, "__name__", "x")),
    ("builtins.input", (None,)), ("builtins.breakpoint", (None,)), ("gc.get_objects", (None,)),
    ("gc.get_referrers", ((),)), ("marshal.loads", (b"",)), ("pickle.find_class", ("os", "system")),
    ("resource.setrlimit", (9, (1, 1))), ("signal.pthread_kill", (1, 9)), ("sys.addaudithook", ()),
    ("cpython._PySys_ClearAuditHooks", ()), ("mmap.__new__", (-1, 1, 0, 0)), ("shutil.rmtree", ("/",)),
    ("some.future.event", ()),
])
def test_audit_policy_denies_by_default(event: str, args: tuple[Any, ...]) -> None:
    guard = worker_guard.Guard()
    with pytest.raises(worker_policy.SandboxViolation):
        guard.hook(event, args)
    assert guard.violations and "not" in guard.violations[0]
    guard.hook("builtins.id", (1,))  # the few allowed events pass
    guard.hook("compile", (b"1", "<string>"))
    with guard.window(event):
        guard.hook(event, args)


def test_worker_environment_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    with make_box() as sb:
        h = Healthy(sb)
        h.check()
        assert set(Path(f"/proc/{sb.worker_pid}/environ").read_bytes().split(b"\x00")) <= WORKER_ENV
        r = h.run("import os\nos.environ")
        assert r.error == "forbidden"


def test_socket_connect_fails(agent: Healthy) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.3)
    port = server.getsockname()[1]
    try:
        r = agent.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}))")
        assert r.error == "forbidden" and told(r, "socket")
        agent.check()
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()


def test_netns_level_cuts_the_network() -> None:
    """The "netns" level on its own: a process started like the worker cannot reach the parent's loopback."""
    cmd, fds = Jail("netns").command([sys.executable, "-I", "-c", "pass"])
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        probe = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)"
        done = subprocess.run([*cmd[:-1], probe], env={}, capture_output=True, timeout=30)
        err = done.stderr.lower()
        assert done.returncode != 0 and (b"unreachable" in err or b"refused" in err), err
    finally:
        server.close()


def test_kernel_limits_seen_from_outside(box: Sandbox) -> None:
    """The worker's rlimits, environment and cwd as the kernel reports them (read from the parent via /proc)."""
    Healthy(box).check()
    proc = Path(f"/proc/{box.worker_pid}")
    limits = {line[:26].strip(): line[26:].split() for line in (proc / "limits").read_text().splitlines()[1:]}
    assert limits["Max address space"][:2] == [str(256 << 20)] * 2
    assert limits["Max file size"][:2] == ["0", "0"]
    assert limits["Max core file size"][:2] == ["0", "0"]
    assert int(limits["Max open files"][0]) <= 16
    assert limits["Max processes"][:2] == ["0", "0"]
    assert limits["Max cpu time"][1] == str(int(LIMITS.cpu_total_s))
    assert set((proc / "environ").read_bytes().split(b"\x00")) <= WORKER_ENV
    assert os.getpgid(box.worker_pid) == box.worker_pid != os.getpgid(0)  # own session and process group
    status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line)
    assert box.isolation == "namespaces"
    assert status["Uid"].split() == ["65534"] * 4 and status["Gid"].split() == ["65534"] * 4
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0 and status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"  # a filter is loaded
    for ns in ("mnt", "pid", "net", "ipc", "uts"):
        assert os.readlink(proc / "ns" / ns) != os.readlink(f"/proc/self/ns/{ns}"), ns
    assert box.stats.worker_uid == 65534 and box.stats.seccomp


def test_unicode_lookalike_names_are_normalised_first(agent: Healthy) -> None:
    r = agent.run("().__\uff43lass__")  # fullwidth c: Python reads it as __class__
    assert r.error == "forbidden" and told(r, "__class__")


def test_reset_rebuilds_the_apis(agent: Healthy) -> None:
    r = agent.run("apis.counter = None\nprint(apis.counter)")
    assert r.ok and r.output == "None\n"
    agent.box.reset()
    agent.check()


def test_fresh_worker_per_episode() -> None:
    """By default each episode that ran cells gets a new interpreter, started in the background at reset()."""
    with make_box() as sb:
        h = Healthy(sb)
        sb.start()
        pid = sb.worker_pid
        sb.reset()  # nothing ran yet: the worker is kept
        assert sb.worker_pid == pid
        h.run("import decimal\ndecimal.getcontext().prec = 2")  # interpreter-wide state an episode may change
        sb.reset()
        assert sb.worker_pid != pid
        r = h.run("import decimal\nprint(decimal.Decimal(1) / 3)")
        assert r.output == "0.3333333333333333333333333333\n"
    with make_box(episodes_per_worker=0) as sb:  # opt out: one interpreter for all episodes
        h = Healthy(sb)
        h.check()
        pid = sb.worker_pid
        sb.reset()
        h.check()
        assert sb.worker_pid == pid


def test_parent_is_unharmed(box: Sandbox) -> None:
    env, modules, cwd = dict(os.environ), set(sys.modules), os.getcwd()
    h = Healthy(box)
    for code in ["import os\nos.environ['PATH'] = ''", "import sys\nsys.modules.clear()", "exit()",
                 "while True:\n    pass"]:
        h.run(code)
    assert dict(os.environ) == env and modules <= set(sys.modules) and os.getcwd() == cwd
    h.check()


# ----------------------------------------------------------------------------------------- crashes and protocol


def test_interpreter_crash_is_reported_and_recovered(agent: Healthy) -> None:
    """The worker dies mid-cell (here killed from the parent while its api call is served): reported, undone,
    replaced."""
    agent.run("x = 1")
    pid = agent.box.worker_pid
    apps_fake_factory.WORKER_PID[:] = [pid]
    r = agent.run("apis.counter.increment(100)\napis.debug.kill_worker(9)\nprint('alive')")
    assert r.error == "crash" and r.restarted and not r.committed
    assert told(r, "crashed", "variables are gone", "kept")
    assert agent.state["counter"] == 0
    agent.check()
    assert agent.box.worker_pid != pid


FAKE_WORKER = textwrap.dedent("""
    # A compromised worker: says hello, then answers each cell with the frames the cell's code names (a JSON list
    # of strings, sent as raw frames), then waits for whatever the parent sends back.
    import json, os, struct, sys
    rfd, wfd = os.dup(0), os.dup(1)
    def read():
        head = os.read(rfd, 4)
        if len(head) < 4:
            sys.exit(0)
        n = struct.unpack(">I", head)[0]
        data = b""
        while len(data) < n:
            data += os.read(rfd, n - len(data))
        return data
    def send(data):
        os.write(wfd, struct.pack(">I", len(data)) + data)
    read()
    send(json.dumps({"ready": True}).encode())
    while True:
        request = json.loads(read())
        frames = [p.replace("SEQ", str(request["seq"])).encode("latin-1") for p in json.loads(request["code"])]
        if len(frames) == 1 and b'"op": "call"' in frames[0]:
            send(frames[0])
            answer = read()
            send(json.dumps({"op": "done", "seq": request["seq"], "kind": "exception", "message": "",
                             "output": answer.decode(), "truncated": False, "commit": True, "restart": False,
                             "cpu": 0}).encode())
        else:  # all in one write: the parent sees every frame at once (no race on "more than one reply")
            os.write(wfd, b"".join(struct.pack(">I", len(f)) + f for f in frames))
""")


@pytest.fixture
def forger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Healthy:
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    script.chmod(0o644)
    tmp_path.chmod(0o755)
    monkeypatch.setattr(sandbox_module, "WORKER_PATH", script)
    sb = make_box(wall_s=2.0)
    yield Healthy(sb)
    sb.close()


def _done(**fields: Any) -> str:
    head = {"op": "done", "seq": "SEQ", "kind": None, "message": "", "output": "", "truncated": False,
            "commit": True, "restart": False, "cpu": 0, **fields}
    return json.dumps(head).replace('"SEQ"', "SEQ")


@pytest.mark.parametrize("frames", [
    ["not json"],
    [_done(kind="rm -rf")],
    [_done(commit="yes")],
    [_done(kind="timeout", commit=True)],
    [_done(seq=-1)],
    [json.dumps([1, 2])],
    [pickle.dumps({"evil": True}).decode("latin-1")],
    [_done(), _done()],  # two replies
    ['{"op": "call", "seq": 999, "app": "counter", "api": "increment", "args": [1], "kwargs": {}}'],
    ['{"op": "call", "seq": SEQ, "app": "counter", "api": "increment", "args": "1", "kwargs": {}}'],
], ids=["not-json", "bad-kind", "bad-commit", "timeout-commits", "other-seq", "list", "pickle", "two-replies",
        "call-other-seq", "call-args-not-list"])
def test_forged_messages_are_rejected_without_unpickling(forger: Healthy, frames: list[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A compromised worker may send anything: the parent checks every field and never unpickles."""
    def no_unpickling(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the parent must never unpickle")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "Unpickler", no_unpickling)
    forger.state = {"counter": 5}
    r = forger.run(json.dumps(frames))
    assert r.error in ("crash", "timeout") and not r.committed and r.restarted
    assert r.state == {"counter": 5}


@pytest.mark.parametrize("call, needle", [
    ({"app": "counter", "api": "_state"}, "ApiAttributeError"),
    ({"app": "counter", "api": "__class__"}, "ApiAttributeError"),
    ({"app": "__class__", "api": "__init__"}, "ApiAttributeError"),
    ({"app": "debug", "api": "grow_state", "args": [1], "kwargs": {"n": 2}}, "TypeError"),
])
def test_a_compromised_worker_can_only_call_the_catalog(forger: Healthy, call: dict[str, Any], needle: str) -> None:
    """Even a worker that sends raw frames reaches the state only through the catalog's endpoints, whose errors
    come back as errors; nothing else of the parent's objects is callable by name."""
    message = {"op": "call", "seq": "SEQ", "args": [], "kwargs": {}, **call}
    forger.state = {"counter": 5}
    r = forger.run(json.dumps([json.dumps(message).replace('"SEQ"', "SEQ")]))
    assert r.error == "exception" and needle in r.output and r.state == {"counter": 5}, r


def test_a_compromised_worker_cannot_commit_without_calls(forger: Healthy) -> None:
    forger.state = {"counter": 5, "_supervisor": {"completed": False}}
    before = json.loads(json.dumps(forger.state))
    r = forger.run(json.dumps([_done(output="Task marked complete.")]))
    assert r.ok and r.committed and r.state == before and r.state is forger.state


def test_channel_is_json_only() -> None:
    for path in (sandbox_module.__file__, *sorted(sandbox_module.WORKER_PATH.glob("*.py"))):
        tree = ast.parse(Path(path).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not imported & {"pickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle"}, path


def test_worker_killed_from_outside_is_replaced_silently() -> None:
    with make_box() as sb:
        h = Healthy(sb)
        h.check()
        os.kill(sb.worker_pid, signal.SIGKILL)  # while idle: not the next cell's fault
        time.sleep(0.1)
        h.check()
        sb.reset()  # a replacement starts in the background ...
        os.kill(sb.worker_pid, signal.SIGKILL)  # ... and dies before it is ready: retried once
        h.check()


def test_a_worker_that_cannot_restart_is_a_crash_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once workers have run in this process, a replacement that fails to start is the cell's crash (the agent is
    told; the trainer goes on), not an exception; the next cell starts a good worker again."""
    with make_box() as sb:
        h = Healthy(sb)
        h.check()
        dead = tmp_path / "dead_worker.py"
        dead.write_text("raise SystemExit(3)\n")
        monkeypatch.setattr(sandbox_module, "WORKER_PATH", dead)
        sb.reset()  # the replacement starts from the broken script
        r = h.run("apis.counter.increment(5)")
        assert r.error == "crash" and told(r, "could not be started", "nothing ran") and not r.committed
        monkeypatch.undo()  # the real worker again
        h.check()


def test_close_leaves_no_process() -> None:
    sb = make_box()
    sb.start()
    pid = sb.worker_pid
    assert pid is not None
    sb.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="closed"):
        sb.run("1", {})


def test_worker_exits_when_the_parent_dies() -> None:
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        from distillgym.envs.apps.sandbox import Sandbox, Limits
        sb = Sandbox({FAKE!r}, Limits())
        sb.run("x = 1", {{}})
        print(sb.worker_pid, flush=True)
        os._exit(0)  # no cleanup: the worker sees EOF (and bubblewrap's parent-death signal)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    pytest.fail("the worker outlived its parent")

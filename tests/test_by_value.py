"""Functions and classes by value, through cloudpickle.

Functions of importable modules cross by reference, stateless ones as
code; the rest (closures, lambdas using globals, functions of `python
-c`, of stdin, of scripts without the `__main__` guard) cross by value
when cloudpickle is installed and subinterp.set_functions_by_value() has
not switched it off.  cloudpickle is a test dependency
(requirements-test.txt, ROOT_ADDED_PACKAGES in scripts/lib.sh): without
it the by-value tests fail (their error names what to install) rather
than skip; the tests of the "cloudpickle missing" path hide it in a
subprocess, and run either way.
"""

import collections
import functools
import os
import subprocess
import sys
import textwrap
import threading

import pytest
from script_helpers import by_value_off  # noqa: F401 (fixture)
from script_helpers import run_script

import subinterp
from subinterp import NotShareableError, _core

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SCALE = 10


def make_adder(k):
    return lambda x: x + k


def make_fact():
    def fact(n):   # recursion through its own closure cell
        return 1 if n <= 1 else n * fact(n - 1)
    return fact


def make_counter_pair():
    # two closures over one cell
    count = 0

    def bump():
        nonlocal count
        count += 1
        return count

    def read():
        return count
    return bump, read


def call_both(pair):
    bump, read = pair
    bump()
    bump()
    return read()


def apply(fn, *args):
    return fn(*args)


def make_closure_returner(k):
    # run in the worker: what comes back is a closure made there
    return make_adder(k)


@pytest.fixture
def interp():
    i = subinterp.create()
    yield i
    i.close()


@pytest.fixture(scope="module")
def pool():
    with subinterp.Pool(2) as p:
        yield p


# ---------------------------------------------------------------------------
# what crosses by value


def test_closure(interp):
    y = 5
    assert interp.call(lambda: y + 1) == 6
    f = make_adder(3)
    out = _core._roundtrip(f)
    assert out is not f and out(4) == 7
    assert _core.loads(_core.dumps(f))(1) == 4   # portable bytes too


def test_lambda_using_a_global(interp):
    assert interp.call(lambda s: collections.Counter(s), "aab") == {
        "a": 2, "b": 1}
    # a global of this module, by value at the time of the call
    assert interp.call(lambda: SCALE * 2) == 20


def test_nested_function_returning_a_closure(interp):
    def outer(k):
        def middle(m):
            return lambda x: x * k + m
        return middle

    assert interp.call(outer(3)(1), 5) == 16
    # a closure made in the worker comes back by value
    back = interp.call(make_closure_returner, 7)
    assert back(1) == 8


def test_recursion_through_a_closure(interp):
    assert interp.call(make_fact(), 10) == 3628800
    fact = _core._roundtrip(make_fact())
    assert fact(5) == 120
    assert fact.__closure__[0].cell_contents is fact


def test_cells_are_copied_as_cloudpickle_copies_them(interp):
    # cloudpickle gives each function its own cells, filled with the
    # values: two closures over one cell no longer share it (docs/codec.md)
    import cloudpickle

    pair = make_counter_pair()
    expected = call_both(cloudpickle.loads(cloudpickle.dumps(pair)))
    assert interp.call(call_both, pair) == expected == 0


def test_closure_over_a_closure_and_partial(interp):
    inner = make_adder(1)

    def outer(x):
        return inner(x) * 2

    assert interp.call(outer, 1) == 4
    assert interp.call(functools.partial(outer, 3)) == 8


def test_handles_inside_a_closure_cross_as_handles(interp):
    q = subinterp.create_queue()
    lock = subinterp.Lock()

    def put(v):
        with lock:
            q.put(v * 2)

    interp.call(put, 21)
    assert q.get(timeout=30) == 42
    data = bytearray(b"abc")
    view = memoryview(data)
    assert interp.call(lambda: bytes(view)) == b"abc"


def test_local_class_by_value_keeps_its_identity(interp):
    class Local:
        def __init__(self, v):
            self.v = v

        @classmethod
        def make(cls, v):
            return cls(v)

        @property
        def double(self):
            return self.v * 2

    out = interp.call(lambda v: Local.make(v), 4)
    # cloudpickle tracks the class: the instance comes back as our class
    assert type(out) is Local and out.double == 8
    assert interp.call(lambda o: o.double, Local(5)) == 10


def test_stateless_functions_still_cross_as_code():
    # no cloudpickle needed, and no pickle stream in the message
    def pickle_stream_length(data):
        return int.from_bytes(data[16:24], "little")   # docs/codec.md

    f = lambda x: x + 1   # noqa: E731
    data = _core.dumps(f)
    assert pickle_stream_length(data) == 0
    assert _core.loads(data)(1) == 2
    assert pickle_stream_length(_core.dumps(make_adder(1))) > 0


def test_untrusted_loads_refuses_functions_by_value():
    data = _core.dumps(make_adder(1))
    with pytest.raises(_core.CorruptMessageError):
        _core.loads(data, trusted=False)


# ---------------------------------------------------------------------------
# the pool, call_in_thread and queue paths


def test_pool_submit_and_map(pool):
    k = 3
    assert pool.submit(lambda x: x * k, 5).result() == 15
    assert list(pool.map(lambda x: x + k, range(5))) == [3, 4, 5, 6, 7]
    assert list(pool.map(make_adder(10), range(40), chunksize=8)) == list(
        range(10, 50))
    assert pool.submit(apply, make_fact(), 6).result() == 720


def test_call_in_thread(interp):
    y = 2
    t = interp.call_in_thread(lambda: y ** 10)
    assert t.result() == 1024


def test_queue_carries_closures(interp):
    q = subinterp.create_queue()
    q.put(make_adder(5))
    assert q.get(timeout=30)(1) == 6
    interp.prepare_main(q=q)
    q.put(make_adder(2))
    interp.exec("f = q.get(timeout=30)\nq.put(f(40))")
    assert q.get(timeout=30) == 42


# ---------------------------------------------------------------------------
# switched off, hostile input


def test_switch_off_gives_a_clear_error(interp, by_value_off):
    y = 1
    with pytest.raises(NotShareableError,
                       match=r"set_functions_by_value\(True\)") as info:
        interp.call(lambda: y)
    assert "closure over ('y',)" in str(info.value)
    with pytest.raises(NotShareableError, match="global names"):
        interp.call(lambda: collections.Counter())
    assert not subinterp.set_functions_by_value(True)   # previous: off
    assert interp.call(lambda: y) == 1


def test_switch_off_from_the_environment():
    res = run_script("""
        import subinterp
        y = 1
        try:
            subinterp.dumps(lambda: y)
        except subinterp.NotShareableError as e:
            print("refused", "switched off" in str(e))
        print("was", subinterp.set_functions_by_value(True))
        print(subinterp.loads(subinterp.dumps(lambda: y))())
    """, env={"SUBINTERP_FUNCTIONS_BY_VALUE": "0"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["refused", "True", "was", "False", "1"]


def test_closure_over_an_unshareable_object(interp):
    lock = threading.Lock()

    def uses_lock():
        return lock.locked()

    with pytest.raises(NotShareableError) as info:
        interp.call(uses_lock)
    msg = str(info.value)
    assert "uses_lock" in msg and "cloudpickle" in msg and "_thread.lock" in msg
    # nothing half-done
    assert interp.call(make_adder(1), 1) == 2
    with pytest.raises(NotShareableError, match=r"at obj\[1\]\['f'\]"):
        _core.dumps([1, {"f": uses_lock}])


def test_closure_raising_while_pickled(interp):
    class Bad:
        def __reduce__(self):
            raise RuntimeError("no pickling for you")

    bad = Bad()
    with pytest.raises(NotShareableError, match="no pickling for you"):
        interp.call(lambda: bad)
    assert interp.call(lambda: 1) == 1


def test_empty_cell(interp):
    def outer():
        def f():
            return later   # noqa: F821  (assigned after f is sent)
        sent = _core._roundtrip(f)
        later = 1   # noqa: F841
        return sent

    f = outer()
    with pytest.raises(NameError):
        f()


def test_deep_closure_chain():
    def wrap(g):
        return lambda: g() + 1

    f = lambda: 0   # noqa: E731
    for _ in range(3000):
        f = wrap(f)
    # as deep as pickle goes (3.12 stops earlier than 3.13+): the value or
    # a clean error, no crash
    try:
        out = _core.loads(_core.dumps(f))
    except (NotShareableError, RecursionError, ValueError):
        return
    assert out.__closure__[0].cell_contents.__closure__ is not None


# ---------------------------------------------------------------------------
# main modules that other interpreters cannot import (subprocesses)


MAIN_CODE = f"""
import sys
sys.path.insert(0, {ROOT!r})
import collections, subinterp
print("top level ran", __name__)
K = 3
def uses_global(x):
    return collections.Counter(x * K)
def fact(n):
    return 1 if n <= 1 else n * fact(n - 1)
class Point:
    def __init__(self, x):
        self.x = x
it = subinterp.create()
print("global", sorted(it.call(uses_global, "a").items()))
print("fact", it.call(fact, 5))
print("class", it.call(lambda p: p.x + K, Point(1)))
back = it.call(lambda: Point(7))
print("back", type(back) is Point, back.x)
with subinterp.Pool(2) as pool:
    print("pool", list(pool.map(lambda x: x * K, range(3))))
it.close()
"""

MAIN_EXPECTED = ["top level ran __main__", "global [('a', 3)]", "fact 120",
                 "class 4", "back True 7", "pool [0, 3, 6]"]


def run_main(how, code, tmp_path, extra_path=None):
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(
            [extra_path, env.get("PYTHONPATH", "")])
    kw = dict(capture_output=True, text=True, timeout=120, env=env,
              cwd=str(tmp_path))
    if how == "-c":
        return subprocess.run([sys.executable, "-c", code], **kw)
    if how == "stdin":
        return subprocess.run([sys.executable, "-"], input=code, **kw)
    script = tmp_path / "unguarded.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], **kw)


@pytest.mark.parametrize("how", ["-c", "stdin", "script"])
def test_main_functions_by_value(how, tmp_path):
    res = run_main(how, MAIN_CODE, tmp_path)
    assert res.returncode == 0, res.stderr
    # the script's top level ran once: never again in a worker
    assert res.stdout.splitlines() == MAIN_EXPECTED


# cloudpickle made unimportable in every interpreter of the subprocess
HIDE_CLOUDPICKLE = "raise ImportError('cloudpickle hidden by the test')\n"


@pytest.fixture
def no_cloudpickle(tmp_path):
    d = tmp_path / "hide"
    (d / "cloudpickle").mkdir(parents=True)
    (d / "cloudpickle" / "__init__.py").write_text(HIDE_CLOUDPICKLE)
    return str(d)


MISSING_CODE = f"""
import sys
sys.path.insert(0, {ROOT!r})
import collections, subinterp
K = 3
def uses_global(x):
    return x * K
def pure(x):
    return x + 1
def make(k):
    return lambda: k
it = subinterp.create()
print("pure", it.call(pure, 1))     # as code: no cloudpickle needed
for f in (uses_global, make(1), lambda: K):
    try:
        it.call(f, 1)
    except subinterp.NotShareableError as e:
        print("refused:", e)
it.close()
"""


@pytest.mark.parametrize("how, where", [
    ("-c", "of `python -c` code"),
    ("stdin", "of a script read from standard input"),
    ("script", "has no `if __name__"),
])
def test_cloudpickle_missing(how, where, tmp_path, no_cloudpickle):
    res = run_main(how, MISSING_CODE, tmp_path, extra_path=no_cloudpickle)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "pure 2"
    refusals = lines[1:]
    assert len(refusals) == 3, res.stdout
    for line in refusals:
        assert line.startswith("refused:")
        assert "pip install subinterp[cloudpickle]" in line, line
    assert where in refusals[0], refusals[0]
    if how != "script":
        # not the advice for script files, which does not apply
        assert "if __name__" not in res.stdout


def test_cloudpickle_missing_module_closure(no_cloudpickle):
    res = run_script("""
        import subinterp
        def make(k):
            return lambda: k
        try:
            subinterp.dumps(make(1))
        except subinterp.NotShareableError as e:
            print(e)
    """, env={"PYTHONPATH": no_cloudpickle})
    assert res.returncode == 0, res.stderr
    assert "closure over ('k',)" in res.stdout
    assert "pip install subinterp[cloudpickle]" in res.stdout

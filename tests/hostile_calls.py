"""Call every public callable of subinterp with wrong types and values.

Run as a script (tests/test_hostile.py does, in a subprocess): each call
must return or raise; none may crash or hang the process.  Before each call
the script prints what it is about to do (flushed), so a crash names the
call that caused it.  Every call runs under an interval timer whose signal
handler raises ``CallTimeout``: a blocking call that cannot be interrupted
by a signal hangs the script, and the test's timeout reports it.

    python tests/hostile_calls.py [--quick]

``--quick`` tries every callable with every single value but only a third
of the value pairs.
"""

from __future__ import annotations

import gc
import itertools
import signal
import sys
import time

import subinterp
from subinterp import _core, interpreters

QUICK = "--quick" in sys.argv
TIMER = 0.05 # seconds a single call may block before the timer interrupts it


class CallTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CallTimeout


# ---------------------------------------------------------------- values --


class RaisingReduce:
    def __reduce__(self):
        raise RuntimeError("__reduce__ raises")


class RaisingEqHash:
    def __eq__(self, other):
        raise RuntimeError("__eq__ raises")

    def __hash__(self):
        raise RuntimeError("__hash__ raises")


class Unshareable:
    """Not picklable: a lock inside."""

    def __init__(self):
        import threading

        self.lock = threading.Lock()


class ClearsList:
    """Empties the list it sits in while that list is being encoded."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        self.target.clear()
        self.target.extend(range(1000))
        return (int, (7,))


class ClearsDict:
    """Mutates the dict it sits in while that dict is being encoded."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        self.target.clear()
        for i in range(100):
            self.target[f"k{i}"] = i
        return (int, (7,))


class MutatingKey:
    """A dict key whose comparisons mutate the dict."""

    def __init__(self, target):
        self.target = target

    def __hash__(self):
        return 1

    def __eq__(self, other):
        self.target.clear()
        return False

    def __reduce__(self):
        self.target.clear()
        return (int, (1,))


class BadIndex:
    def __index__(self):
        raise RuntimeError("__index__ raises")

    def __float__(self):
        raise RuntimeError("__float__ raises")


class BadBuffer:
    """Exports a buffer, then claims an odd format."""

    def __buffer__(self, flags):
        return memoryview(b"abc")


def mutating_containers():
    lst: list = [1, 2]
    lst.append(ClearsList(lst))
    lst.extend(range(10))
    d: dict = {"a": 1}
    d["b"] = ClearsDict(d)
    d2: dict = {}
    d2[MutatingKey(d2)] = 1
    d2[MutatingKey(d2)] = 2
    cyc: list = []
    cyc.append(cyc)
    return [lst, d, d2, cyc]


def closed_interpreter():
    i = subinterp.create()
    i.close()
    return i


def values():
    """A fresh list of hostile argument values."""
    vals = [
        None,
        -1,
        0,
        2**63,
        -(2**63) - 1,
        2**200,
        float("nan"),
        float("inf"),
        -float("inf"),
        -0.5,
        "x",
        "",
        b"\x00\xff" * 3,
        bytearray(b"zz"),
        memoryview(b"abcdef")[::2],
        (),
        [],
        {},
        object(),
        RaisingReduce(),
        RaisingEqHash(),
        Unshareable(),
        BadIndex(),
        BadBuffer(),
        len,
        lambda: 1,
        type,
        closed_interpreter(),
    ]
    vals.extend(mutating_containers())
    return vals


# --------------------------------------------------------------- targets --


def instances():
    """Fresh objects whose methods are called."""
    objs = {}
    objs["Queue"] = subinterp.Queue()
    full = subinterp.Queue(1)
    full.put(1)
    objs["full Queue"] = full
    s, r = subinterp.create_channel()
    objs["SendChannel"] = s
    objs["RecvChannel"] = r
    s2, r2 = subinterp.create_channel()
    s2.close()
    objs["closed SendChannel"] = s2
    objs["RecvChannel of closed"] = r2
    for name in ("Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event"):
        objs[name] = getattr(subinterp, name)()
    objs["Barrier"] = subinterp.Barrier(2)
    objs["Interpreter"] = subinterp.create()
    objs["closed Interpreter"] = closed_interpreter()
    objs["main Interpreter"] = subinterp.get_main()
    objs["SharedBuffer"] = subinterp.share(bytearray(64), writable=True)
    return objs


# Methods that end or block an object for good are called last, once.
FINAL = {"close", "shutdown", "__exit__", "abort", "reset"}
# Callables that are not hostile-input targets: they change the process
# (exit handling, fork hooks) rather than take input.
SKIP = {
    "_shutdown",
    "_pools_fork_before",
    "_pools_fork_after_parent",
    "_fork_warn_subinterpreters",
    "_interrupt_waits",
}


def module_callables():
    out = []
    for modname, mod in (
        ("subinterp", subinterp),
        ("subinterp._core", _core),
        ("subinterp.interpreters", interpreters),
    ):
        names = sorted(set(dir(mod)))
        for name in names:
            if name in SKIP or name.startswith("__"):
                continue
            obj = getattr(mod, name)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                continue
            if callable(obj):
                out.append((f"{modname}.{name}", obj))
    return out


def method_names(obj):
    names = []
    for name in sorted(dir(obj)):
        if name.startswith("__") and name not in ("__enter__", "__exit__"):
            continue
        attr = getattr(type(obj), name, None)
        if attr is None or not callable(getattr(obj, name, None)):
            continue
        names.append(name)
    return sorted(names, key=lambda n: n in FINAL)


# ------------------------------------------------------------------ run --

calls = 0
system_errors: list[str] = []
outcomes: dict[str, int] = {}


def attempt(label, fn, args):
    global calls
    shown = ", ".join(_short(a) for a in args)
    print(f"{label}({shown})", flush=True)
    signal.setitimer(signal.ITIMER_REAL, TIMER)
    try:
        try:
            result = fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except CallTimeout:
        kind = "interrupted"
    except (KeyboardInterrupt, SystemExit) as exc:
        raise AssertionError(f"{label} raised {exc!r}") from exc
    except BaseException as exc:  # noqa: BLE001 - any exception is fine
        kind = type(exc).__name__
        if isinstance(exc, SystemError):
            # CPython's "a C function misbehaved": a bug of ours.
            print(f"  -> SystemError: {exc}", flush=True)
            system_errors.append(f"{label}({shown}): {exc}")
    else:
        kind = "ok"
        _dispose(result)
    calls += 1
    outcomes[kind] = outcomes.get(kind, 0) + 1


def _dispose(result):
    """Do not leave pools, interpreters or threads behind."""
    for obj in result if isinstance(result, (list, tuple)) else (result,):
        if isinstance(obj, subinterp.Interpreter) and obj.id != 0:
            try:
                if obj != subinterp.get_current():
                    obj.close()
            except Exception:
                pass
        elif type(obj).__name__ in ("Pool", "InterpreterPoolExecutor"):
            obj.shutdown(wait=True, cancel_futures=True)
        elif type(obj).__name__ == "InterpreterThread":
            try:
                obj.join(1)
            except Exception:
                pass


def _short(v):
    try:
        r = repr(v)
    except Exception:
        r = f"<{type(v).__name__}>"
    return r if len(r) < 40 else r[:37] + "..."


def arg_tuples(nargs):
    vals = values()
    if nargs == 0:
        yield ()
    elif nargs == 1:
        for v in vals:
            yield (v,)
    else:
        step = 3 if QUICK else 1
        for a, b in itertools.product(vals[::step], vals[::step]):
            yield (a, b)


def main():
    signal.signal(signal.SIGALRM, _alarm)
    t0 = time.monotonic()
    for label, fn in module_callables():
        # Constructors and module functions: up to two positional args.
        for nargs in (0, 1, 2):
            for args in arg_tuples(nargs):
                if label.endswith((".map", ".submit")) and nargs == 0:
                    continue
                attempt(label, fn, args)
        gc.collect()
    for kind, obj in instances().items():
        for name in method_names(obj):
            for nargs in (0, 1, 2):
                for args in arg_tuples(nargs):
                    # Fresh instance state for the final methods.
                    attempt(f"{kind}.{name}", getattr(obj, name), args)
        gc.collect()
    # Keyword arguments of the constructors that take them.
    for label, fn in (
        ("Queue", subinterp.Queue),
        ("create_queue", subinterp.create_queue),
        ("create_channel", subinterp.create_channel),
        ("create", subinterp.create),
        ("Pool", subinterp.Pool),
        ("select", subinterp.select),
    ):
        for kw in ("maxsize", "timeout", "config", "max_workers",
                   "unbounditems", "initializer", "initargs",
                   "max_tasks_per_worker", "thread_name_prefix"):
            for v in values():
                attempt(f"{label}[{kw}=]", lambda v=v, kw=kw: fn(**{kw: v}), ())
    gc.collect()
    took = time.monotonic() - t0
    for line in system_errors:
        print("SYSTEMERROR", line, flush=True)
    print(f"DONE {calls} calls in {took:.1f}s: {sorted(outcomes.items())}",
          flush=True)


if __name__ == "__main__":
    main()

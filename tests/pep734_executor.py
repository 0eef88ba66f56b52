"""A program written for concurrent.futures.InterpreterPoolExecutor (3.14).

Run as ``python pep734_executor.py MODULE`` with MODULE
``concurrent.futures`` or ``subinterp.futures``: the tasks, the
initializer and the exception classes are defined here, in the main
script (under its ``if __name__ == "__main__":`` guard, as
multiprocessing's spawn rule asks).  tests/test_pep734_conformance.py
compares the output of both.
"""
import importlib
import os
import sys
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, as_completed, wait


class CustomError(Exception):
    pass


def square(x):
    return x * x


def power(x, n=2):
    return x ** n


def fail(x):
    raise ValueError(f"bad {x}")


def fail_custom():
    raise CustomError("custom", 1)


def setup(tag):
    # sys is the worker interpreter's own module: what the initializer
    # leaves there, the tasks of that worker see
    sys.pool_tag = tag


def read_setup(x):
    return (sys.pool_tag, x)


def bad_init():
    raise RuntimeError("init failed")


def block(started_fd, release_fd):
    os.write(started_fd, b"s")
    return os.read(release_fd, 1)


def main(modname):
    futures = importlib.import_module(modname)
    if modname == "concurrent.futures":
        from concurrent.futures.interpreter import BrokenInterpreterPool
    else:
        from subinterp.futures import BrokenInterpreterPool
    Executor = futures.InterpreterPoolExecutor

    with Executor(2) as ex:
        print(ex.submit(square, 7).result())
        print(ex.submit(power, 2, n=10).result())
        print(list(ex.map(square, range(10))))
        print(list(ex.map(power, [1, 2, 3], [3, 2, 1], timeout=60)))
        print(list(ex.map(square, range(5), chunksize=2)))
        print(list(ex.map(square, range(7), buffersize=2)))
        fs = [ex.submit(square, i) for i in range(5)]
        done, not_done = wait(fs)
        print(sorted(f.result() for f in done), len(not_done))
        print(sorted(f.result() for f in as_completed(fs)))
        done, _ = wait([ex.submit(square, 3)], return_when=FIRST_COMPLETED)
        print([f.result() for f in done])

        # a task's exception: itself, its cause an ExecutionFailed with the
        # other interpreter's traceback
        exc = ex.submit(fail, 3).exception()
        cause = exc.__cause__
        print(type(exc).__name__, exc.args, type(cause).__name__)
        print(cause.excinfo.type.__name__, cause.excinfo.msg,
              cause.excinfo.formatted)
        print(str(cause).splitlines()[:3])
        print("in fail" in cause.excinfo.errdisplay)
        try:
            list(ex.map(fail, [1]))
        except ValueError as e:
            print("map:", e)
        exc = ex.submit(fail_custom).exception()
        print("custom:", type(exc).__name__)

    # positional signature: max_workers, thread_name_prefix, initializer,
    # initargs
    with Executor(1, "tagged", setup, ("positional",)) as ex:
        print(ex.submit(read_setup, 1).result())
    with Executor(max_workers=1, initializer=setup, initargs=["keyword"]) as ex:
        print(list(ex.map(read_setup, [2, 3])))

    # an initializer that fails breaks the executor
    ex = Executor(1, initializer=bad_init)
    for what, fn in (("result", lambda: ex.submit(square, 2).result()),
                     ("submit", lambda: ex.submit(square, 3))):
        try:
            fn()
        except BrokenInterpreterPool as e:
            print("broken", what, isinstance(e, BrokenExecutor))
    ex.shutdown()

    # shutdown(cancel_futures=True): the running task finishes, the queued
    # ones are cancelled; nothing more can be submitted
    started_r, started_w = os.pipe()
    release_r, release_w = os.pipe()
    ex = Executor(1)
    first = ex.submit(block, started_w, release_r)
    queued = [ex.submit(square, i) for i in range(4)]
    os.read(started_r, 1)
    ex.shutdown(wait=False, cancel_futures=True)
    os.write(release_w, b"x")
    ex.shutdown(wait=True)
    print(first.result(), [f.cancelled() for f in queued])
    try:
        ex.submit(square, 1)
    except RuntimeError as e:
        print("after shutdown:", e)
    for fd in (started_r, started_w, release_r, release_w):
        os.close(fd)

    for bad in (0, -1):
        try:
            Executor(bad)
        except ValueError as e:
            print(bad, e)
    with Executor(1.5) as ex:
        print(ex.submit(square, 5).result())
    print("done")


if __name__ == "__main__":
    main(sys.argv[1])

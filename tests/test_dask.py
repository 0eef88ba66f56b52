"""dask graphs on subinterp: dask.compute, dask.delayed and dask.bag with
closures and lambdas (subinterp.dask.get, a Pool as dask's executor), and a
dask.distributed worker whose tasks run on a subinterp pool.

dask and distributed are test dependencies (requirements-test.txt,
ROOT_ADDED_PACKAGES in scripts/lib.sh): missing, these tests fail rather
than skip.
"""

import os
import subprocess
import sys
import threading

import dask
import dask.bag as db
import pytest
from dask import delayed

import subinterp
import subinterp.dask

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

OFFSET = 100

# On 3.12, dask.bag cannot be imported in a subinterpreter: it imports
# fsspec, which imports ctypes, and 3.12's _ctypes has no multi-phase init.
BAG_IMPORTS_IN_SUBINTERPRETERS = sys.version_info >= (3, 13)


def closure_graph():
    k = 3
    parts = [delayed(lambda x: x * k + OFFSET)(i) for i in range(6)]
    ids = [delayed(lambda _: __import__("subinterp").get_current().id)(p)
           for p in parts]
    total = delayed(lambda *xs: sum(xs))(*parts)
    return total, ids


@pytest.fixture(scope="module")
def pool():
    with subinterp.Pool(2) as p:
        yield p


@pytest.mark.parametrize("how", ["get", "pool", "config"])
def test_delayed_closures_and_lambdas(how, pool):
    total, ids = closure_graph()
    expected = sum(i * 3 + OFFSET for i in range(6))
    if how == "get":
        res = dask.compute(total, ids, scheduler=subinterp.dask.get)
    elif how == "pool":
        res = dask.compute(total, ids, scheduler=pool)
    else:
        with dask.config.set(scheduler=subinterp.dask.get):
            res = dask.compute(total, ids)
    assert res[0] == expected
    assert all(i != 0 for i in res[1])   # ran in subinterpreters


def test_get_with_a_pool_of_its_own():
    import functools

    total, ids = closure_graph()
    with subinterp.Pool(1) as one:
        get = functools.partial(subinterp.dask.get, pool=one)
        t, where_ = dask.compute(total, ids, scheduler=get)
        worker = one.submit(
            lambda: __import__("subinterp").get_current().id).result()
        assert set(where_) == {worker}
    assert t == sum(i * 3 + OFFSET for i in range(6))


def test_same_results_as_the_threaded_scheduler():
    def make_graph():
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        leaves = [delayed(fib)(n) for n in range(12, 18)]
        pairs = [delayed(lambda a, b: a * b)(a, b)
                 for a, b in zip(leaves, leaves[1:])]
        return delayed(lambda *xs: sorted(xs))(*pairs)

    graph = make_graph()
    assert (dask.compute(graph, scheduler=subinterp.dask.get)
            == dask.compute(graph, scheduler="threads"))


def test_task_exception_propagates():
    def boom(x):
        raise ValueError(f"boom {x}")

    with pytest.raises(ValueError, match="boom 7"):
        dask.compute(delayed(boom)(7), scheduler=subinterp.dask.get)
    # still usable
    assert dask.compute(delayed(lambda: 1)(), scheduler=subinterp.dask.get) \
        == (1,)


def test_unshareable_closure_is_a_clean_error():
    lock = threading.Lock()
    with pytest.raises(subinterp.NotShareableError, match="_thread.lock"):
        dask.compute(delayed(lambda: lock.locked())(),
                     scheduler=subinterp.dask.get)


@pytest.mark.skipif(not BAG_IMPORTS_IN_SUBINTERPRETERS,
                    reason="Python 3.12: dask.bag imports fsspec, which "
                           "imports ctypes, and 3.12's _ctypes cannot be "
                           "loaded in subinterpreters")
def test_bag_with_lambdas():
    k = 3
    b = db.from_sequence(range(20), npartitions=4)
    out = b.map(lambda x: x + k).filter(lambda x: x % 2 == 0)
    expected = [x + k for x in range(20) if (x + k) % 2 == 0]
    assert out.compute(scheduler=subinterp.dask.get) == expected
    assert out.sum().compute(scheduler=subinterp.dask.get) == sum(expected)
    freq = b.map(lambda x: x % 3).frequencies()
    assert dict(freq.compute(scheduler=subinterp.dask.get)) == \
        dict(freq.compute(scheduler="sync"))


@pytest.mark.skipif(BAG_IMPORTS_IN_SUBINTERPRETERS,
                    reason="only Python 3.12 cannot import dask.bag in "
                           "subinterpreters")
def test_bag_on_312_says_why():
    b = db.from_sequence(range(4), npartitions=2).map(lambda x: x + 1)
    with pytest.raises(ImportError) as info:
        b.compute(scheduler=subinterp.dask.get)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "_ctypes" in str(info.value) and "scheduler='threads'" in notes


# ---------------------------------------------------------------------------
# dask.distributed


def distributed_graph():
    k = 4
    return [delayed(lambda x: (x * k + OFFSET,
                               __import__("subinterp").get_current().id))(i)
            for i in range(6)]


def check_distributed_results(res):
    assert [v for v, _ in res] == [i * 4 + OFFSET for i in range(6)]
    assert all(interp != 0 for _, interp in res)   # on the pool


def test_distributed_worker_executor():
    from distributed import Client, LocalCluster

    ex = subinterp.dask.WorkerExecutor(2)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None, executor=ex) as cluster, \
            Client(cluster) as client:
        check_distributed_results(dask.compute(*distributed_graph()))

        def boom():
            raise ValueError("boom in a subinterpreter")
        with pytest.raises(ValueError, match="boom in a subinterpreter"):
            client.compute(delayed(boom)()).result()
        check_distributed_results(client.gather(
            client.compute(distributed_graph())))
    # the worker shut its executor (and the executor's pool) down
    assert ex.pool._shutdown


def test_distributed_executor_chosen_by_annotation():
    from distributed import Client, LocalCluster

    ex = subinterp.dask.WorkerExecutor(2)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None,
                      executor={"subinterp": ex}) as cluster, \
            Client(cluster):
        with dask.annotate(executor="subinterp"):
            on_pool = distributed_graph()
        here = delayed(lambda: __import__("subinterp").get_current().id)()
        res, main_id = dask.compute(on_pool, here, optimize_graph=False)
        check_distributed_results(res)
        assert main_id == 0   # the worker's own threads: main interpreter


def test_distributed_preload_in_a_worker_process():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      host="127.0.0.1", dashboard_address=None,
                      preload=["subinterp.dask"]) as cluster, \
            Client(cluster) as client:
        check_distributed_results(dask.compute(*distributed_graph()))
        executor = client.run(
            lambda dask_worker: type(dask_worker.executor).__qualname__)
        assert list(executor.values()) == ["WorkerExecutor"]


def test_distributed_worker_command_line():
    # the documented command: dask worker ADDR --nworkers 1 --nthreads 2
    # --preload subinterp.dask (as `python -m distributed.cli.dask_worker`,
    # so that it is this Python's)
    from distributed import Client, LocalCluster

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
    with LocalCluster(n_workers=0, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker",
             cluster.scheduler_address, "--nworkers", "1", "--nthreads", "2",
             "--preload", "subinterp.dask", "--no-dashboard"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        err = ""
        try:
            client.wait_for_workers(1, timeout=60)
            check_distributed_results(dask.compute(*distributed_graph()))
            executor = client.run(
                lambda dask_worker: type(dask_worker.executor).__qualname__)
            assert list(executor.values()) == ["WorkerExecutor"]
        finally:
            worker.terminate()
            try:
                _, err = worker.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                _, err = worker.communicate()
            print(err)   # shown when the test fails
        assert "Traceback" not in err

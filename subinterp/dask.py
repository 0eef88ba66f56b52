"""Dask on subinterp: a graph's tasks run on interpreters that each own a GIL.

Local scheduling (``dask.compute``, ``dask.delayed``, ``dask.bag``)::

    import dask
    import subinterp.dask

    dask.compute(graph, scheduler=subinterp.dask.get)     # the default pool
    dask.config.set(scheduler=subinterp.dask.get)         # for every compute
    dask.compute(graph, scheduler=subinterp.Pool(4))      # a pool of your own

dask hands its task objects to the pool as they are; the functions in
them that cannot cross by reference (closures, lambdas using globals)
cross by value through cloudpickle, as everywhere in subinterp.

dask.distributed: a worker whose tasks run on a subinterp pool::

    dask worker SCHEDULER --nworkers 1 --nthreads 4 --preload subinterp.dask

or, from Python, ``Worker(..., executor=subinterp.dask.WorkerExecutor(4))``
(also through ``LocalCluster(processes=False, executor=...)``).  See
docs/dask.md.
"""

from __future__ import annotations

import concurrent.futures as cf

from ._pool import Pool, default_pool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = ["WorkerExecutor", "dask_setup", "get"]


_SUBINTERP_IMPORT_NOTE = (
    "subinterp.dask: a module this task needs cannot be imported in a "
    "subinterpreter (an extension module without multi-phase init; e.g. "
    "dask.bag imports fsspec, which imports ctypes, and _ctypes cannot be "
    "loaded in subinterpreters on Python 3.12); run such graphs with "
    "scheduler='threads' or 'processes', or use a newer Python"
)


def _explain(exc: BaseException) -> None:
    # CPython's refusal, or subinterp's explanation of it (_extensions.py)
    text = str(exc)
    if isinstance(exc, ImportError) and (
        "does not support loading in subinterpreters" in text
        or "in this interpreter: it is an extension module" in text
    ):
        exc.add_note(_SUBINTERP_IMPORT_NOTE)


def get(dsk: Any, keys: Any, *, pool: Pool | None = None, **kwargs: Any) -> Any:
    """A dask scheduler that runs the tasks on subinterp's default pool
    (or on *pool*): ``dask.compute(..., scheduler=subinterp.dask.get)``.

    Other keyword arguments go to ``dask.local.get_async`` (callbacks,
    ``chunksize``, ...).  Tasks run in parallel, up to one per worker of
    the pool; their arguments and results cross with subinterp's codec.
    """
    from dask.local import get_async

    if pool is None:
        pool = default_pool()
    try:
        return get_async(pool.submit, pool._max_workers, dsk, keys, **kwargs)
    except BaseException as exc:
        _explain(exc)
        raise


# ---------------------------------------------------------------------------
# dask.distributed


def _is_task(obj: Any) -> bool:
    """Is obj a task of a dask graph (what a distributed worker runs)?"""
    try:
        from dask._task_spec import GraphNode
    except ImportError:  # pragma: no cover - dask older than 2024.12
        return False
    return isinstance(obj, GraphNode)


class _TaskOnPool:
    """Stands for a task in distributed's bookkeeping: calling it runs the
    task on the pool and waits for its result."""

    __slots__ = ("_task", "_pool")

    def __init__(self, task: Any, pool: Pool) -> None:
        self._task = task
        self._pool = pool

    def __call__(self, data: dict) -> Any:
        try:
            return self._pool.submit(self._task, data).result()
        except BaseException as exc:
            _explain(exc)
            raise

    def __repr__(self) -> str:
        return f"<{self._task!r} on a subinterp pool>"


class WorkerExecutor(cf.Executor):
    """The executor of a ``dask.distributed`` Worker whose tasks run on
    subinterp interpreters.

    distributed cannot be imported in a subinterpreter (psutil has no
    multi-phase init), so its bookkeeping around each task (timings, error
    reports) runs in a thread of this interpreter, and only the task
    itself, with its inputs and result, crosses to the pool.  Give the
    worker as many threads as the pool has workers (``--nthreads``).

    *max_workers*: the workers of the pool made for this executor (default:
    the usable CPUs); or *pool*: a ``subinterp.Pool`` to use instead (not
    shut down with the executor).
    """

    def __init__(self, max_workers: int | None = None, *,
                 pool: Pool | None = None) -> None:
        if pool is not None and max_workers is not None:
            raise TypeError("give max_workers or pool, not both")
        self._own_pool = pool is None
        self._pool = Pool(max_workers) if pool is None else pool
        self._max_workers = self._pool._max_workers
        self._threads = cf.ThreadPoolExecutor(
            self._max_workers, thread_name_prefix="subinterp-dask")

    @property
    def pool(self) -> Pool:
        """The ``subinterp.Pool`` the tasks run on."""
        return self._pool

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> cf.Future:
        args = tuple(_TaskOnPool(a, self._pool) if _is_task(a) else a
                     for a in args)
        return self._threads.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *,
                 cancel_futures: bool = False) -> None:
        self._threads.shutdown(wait, cancel_futures=cancel_futures)
        if self._own_pool:
            self._pool.shutdown(wait, cancel_futures=cancel_futures)


def dask_setup(worker: Any) -> None:
    """distributed's preload hook (``dask worker --preload subinterp.dask``,
    ``LocalCluster(preload=["subinterp.dask"])``): the worker's default
    executor becomes a ``WorkerExecutor`` with one interpreter per worker
    thread."""
    old = worker.executors.get("default")
    worker.executors["default"] = WorkerExecutor(worker.state.nthreads)
    if old is not None:
        old.shutdown(wait=False)

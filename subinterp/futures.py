"""``concurrent.futures`` names for subinterp's pool.

``InterpreterPoolExecutor`` takes the constructor arguments of the
standard library's (Python 3.14) and runs on ``subinterp.Pool``: warm
workers, tasks and results through subinterp's codec and C transport.
The differences are listed in docs/compatibility.md.
"""

from __future__ import annotations

import math

from ._pool import BrokenInterpreterPool, Pool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

__all__ = ["BrokenInterpreterPool", "InterpreterPoolExecutor"]


class InterpreterPoolExecutor(Pool):
    """``concurrent.futures.InterpreterPoolExecutor`` on subinterp.

    Each worker is a native thread that owns an interpreter with its own
    GIL.  ``initializer(*initargs)`` runs in each worker's interpreter; if
    it raises, the executor is broken (``BrokenInterpreterPool``).  A
    task's exception is re-raised by ``Future.result()`` as itself, with an
    ``ExecutionFailed`` that carries the other interpreter's traceback as
    its ``__cause__``, as the standard library's does.

    *max_workers* defaults to the number of usable CPUs (each worker has
    its own GIL); any positive number is taken, a fraction rounded up, as
    the standard library's executor starts that many threads.
    """

    _remote_cause = "execution_failed"

    def __init__(
        self,
        max_workers: float | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple = (),
    ) -> None:
        if max_workers is not None:
            if max_workers <= 0:
                raise ValueError("max_workers must be greater than 0")
            max_workers = math.ceil(max_workers)
        super().__init__(
            max_workers,
            initializer=initializer,
            initargs=initargs,
            thread_name_prefix=thread_name_prefix,
        )

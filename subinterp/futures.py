"""``concurrent.futures`` names for subinterp's pool.

``InterpreterPoolExecutor`` takes the constructor arguments of the
standard library's (Python 3.14) and runs on ``subinterp.Pool``: warm
workers, tasks and results through subinterp's codec and C transport.
"""

from __future__ import annotations

from ._pool import BrokenInterpreterPool, Pool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

__all__ = ["BrokenInterpreterPool", "InterpreterPoolExecutor"]


class InterpreterPoolExecutor(Pool):
    """``concurrent.futures.InterpreterPoolExecutor`` on subinterp.

    Each worker is a native thread that owns an interpreter with its own
    GIL.  ``initializer`` runs in each worker's interpreter; if it raises,
    the executor is broken (``BrokenInterpreterPool``).
    """

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple = (),
    ) -> None:
        super().__init__(
            max_workers,
            initializer=initializer,
            initargs=initargs,
            thread_name_prefix=thread_name_prefix,
        )

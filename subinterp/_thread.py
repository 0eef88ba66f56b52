"""Threads started by ``Interpreter.call_in_thread``."""

from __future__ import annotations

import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["InterpreterThread", "start_call"]

_MISSING = object()


class InterpreterThread(threading.Thread):
    """A thread that makes one call in another interpreter.

    As the standard library's ``call_in_thread`` thread, it is named
    ``Thread-N (_call)`` and an exception the call raises
    (``ExecutionFailed`` for an exception in the other interpreter) is
    uncaught in the thread, so it goes to ``threading.excepthook``.
    ``result(timeout=None)`` also waits for the call and returns its
    result, or raises that exception.
    """

    def __init__(self, interp: Any, encoded: Any) -> None:
        # The target's name gives the thread the standard library's name.
        super().__init__(target=self._call)
        self._interp = interp
        self._encoded = encoded
        self._result: Any = _MISSING
        self._exc: BaseException | None = None

    def _call(self) -> None:
        try:
            self._result = self._interp._call_encoded(self._encoded)
        except BaseException as exc:
            self._exc = exc  # for result()
            raise  # and for threading.excepthook
        finally:
            self._encoded = None

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the call to finish and return its result.

        Raises ``TimeoutError`` when *timeout* seconds pass first.
        """
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError(f"call still running after {timeout} s")
        if self._exc is not None:
            raise self._exc
        return self._result


def start_call(interp: Any, encoded: Any) -> InterpreterThread:
    t = InterpreterThread(interp, encoded)
    t.start()
    return t

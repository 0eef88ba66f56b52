"""Queues, channels, select and locks shared by every interpreter.

Everything here lives in C (``subinterp._core``, see docs/queues.md); this
module only gathers the names and makes the exception classes on first
use: their bases ``queue.Empty`` and ``queue.Full`` live in the ``queue``
module, which imports ``threading``, and a new interpreter should not pay
for that unless it uses them.
"""

from . import _core
from ._core import (
    UNBOUND,
    UNBOUND_ERROR,
    UNBOUND_REMOVE,
    Barrier,
    BoundedSemaphore,
    Event,
    Lock,
    Queue,
    RecvChannel,
    RLock,
    Semaphore,
    SendChannel,
    create_channel,
    create_queue,
    select,
)

# No `from __future__ import annotations` (an import in every interpreter
# that uses queues): names only the type checker knows are quoted.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "UNBOUND",
    "UNBOUND_ERROR",
    "UNBOUND_REMOVE",
    "UnboundItemsError",
    "AbandonedLockWarning",
    "Barrier",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "ChannelClosedError",
    "ChannelEmptyError",
    "ChannelError",
    "ChannelFullError",
    "ChannelNotFoundError",
    "Event",
    "ItemInterpreterDestroyed",
    "Lock",
    "Queue",
    "QueueEmpty",
    "QueueError",
    "QueueFull",
    "QueueNotFoundError",
    "RLock",
    "RecvChannel",
    "Semaphore",
    "SendChannel",
    "create_channel",
    "create_queue",
    "list_all_queues",
    "select",
]

# Exception classes made by _core on first use (see the module docstring).
LAZY_NAMES = frozenset(
    {
        "AbandonedLockWarning",
        "BrokenBarrierError",
        "ChannelClosedError",
        "ChannelEmptyError",
        "ChannelError",
        "ChannelFullError",
        "ChannelNotFoundError",
        "ItemInterpreterDestroyed",
        "QueueEmpty",
        "QueueError",
        "QueueFull",
        "QueueNotFoundError",
        "UnboundItemsError",
    }
)


def __getattr__(name: str) -> "Any":
    if name in LAZY_NAMES:
        return _core._exception(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_QUEUE_TAG = 10  # TAG_QUEUE in src/objects.h


def list_all_queues() -> list[Queue]:
    """Every live queue of the process (handles made in this interpreter)."""
    queues = []
    for qid in _core._list_queue_ids():
        try:
            queues.append(_core._handle_by_id(qid, _QUEUE_TAG))
        except Exception:  # freed meanwhile
            pass
    return queues

"""Runs the tasks of Pool.map and of subinterp.multiprocessing inside a
worker (kept free of imports, so that resolving it in a fresh interpreter
costs next to nothing)."""


def run_chunk(fn, chunk):
    """Call fn(*args) for each args tuple of chunk; the list of results."""
    return [fn(*args) for args in chunk]


class UnsentException(Exception):
    """Raised by the multiprocessing tasks below in place of an exception
    that cannot be sent back (multiprocessing's MaybeEncodingError on the
    caller's side).  args: (repr(the exception), repr(why it cannot be
    sent))."""


def _unsent(exc):
    # Only on the failure path: the pool encodes the exception once more
    # (and sends it as itself) when this succeeds.
    from . import _core

    try:
        _core.dumps(exc)
    except Exception as why:
        # the codec's NotShareableError says what pickle said; its cause
        # is pickle's own error, which multiprocessing reports
        return UnsentException(repr(exc), repr(why.__cause__ or why))
    return None


def mp_apply(fn, args, kwds):
    """``fn(*args, **kwds)``, for apply_async and imap with chunksize 1."""
    try:
        return fn(*args, **kwds)
    except Exception as exc:
        unsent = _unsent(exc)
        if unsent is None:
            raise
    raise unsent


def mp_chunk(fn, chunk, star):
    """``[fn(*args) for args in chunk]`` with star, else
    ``[fn(x) for x in chunk]``: one chunk of map, starmap, imap."""
    try:
        if star:
            return [fn(*args) for args in chunk]
        return [fn(x) for x in chunk]
    except Exception as exc:
        unsent = _unsent(exc)
        if unsent is None:
            raise
    raise unsent

"""Runs one chunk of Pool.map inside a worker (kept free of imports, so
that resolving it in a fresh interpreter costs next to nothing)."""


def run_chunk(fn, chunk):
    """Call fn(*args) for each args tuple of chunk; the list of results."""
    return [fn(*args) for args in chunk]

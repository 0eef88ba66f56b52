"""Functions the asyncio tests run in pool workers (by reference: worker
interpreters start with our sys.path).  Kept apart from the test module so
that a worker does not import pytest."""

import asyncio

import subinterp


async def add_later(a, b, delay=0.0):
    await asyncio.sleep(delay)
    return a + b


async def loop_identity():
    """The id of the running loop and of this interpreter."""
    return id(asyncio.get_running_loop()), subinterp.get_current().id


async def fail_later(message):
    await asyncio.sleep(0)
    raise ValueError(message)


def block_until(event, started):
    """Say it started, then wait for the event (a subinterp.Event)."""
    started.put("started")
    event.wait()
    return "released"


def mark(q, value):
    q.put(value)
    return value


class Holder:
    async def method(self, x):
        return x * 2


def fail_init():
    raise RuntimeError("the initializer failed")

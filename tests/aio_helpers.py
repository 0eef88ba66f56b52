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


def echo_async(inq, outq, n):
    """Run an event loop that answers n items of inq on outq (x + 1),
    through get_async/put_async; returns n."""
    async def main():
        for _ in range(n):
            x = await inq.get_async()
            await outq.put_async(x + 1)
        return n

    return asyncio.run(main())


def recv_all_async(recv):
    """Run an event loop that receives everything until the channel is
    closed and drained (async for)."""
    async def main():
        return [x async for x in recv]

    return asyncio.run(main())


def await_get(q, started):
    """Say it started, then await q.get_async() in an event loop."""
    async def main():
        started.put("waiting")
        return await q.get_async()

    return asyncio.run(main())


def put_all_async(q, items, unbounditems=None):
    """put_async each item from an event loop; unbounditems: the name of
    a sentinel of subinterp._queues, None for the queue's default."""
    from subinterp import _queues

    kwargs = ({} if unbounditems is None
              else {"unbounditems": getattr(_queues, unbounditems)})

    async def main():
        for item in items:
            await q.put_async(item, **kwargs)

    asyncio.run(main())

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


# A rendezvous among the coroutine tasks of one worker interpreter: module
# state is per interpreter, so these count the coroutines running at once
# in the interpreter that runs them.
_arrived = 0
_peak = 0
_all_here = None


async def rendezvous(parties, value=None):
    """Wait until *parties* coroutines of this interpreter are running at
    once (they all are inside this call), then return (value, the most
    seen at once, this interpreter's id).  Fails instead of hanging when
    they never are."""
    global _arrived, _peak, _all_here
    if _all_here is None or _all_here.is_set() and _arrived == 0:
        _all_here = asyncio.Event()
    here = _all_here
    _arrived += 1
    _peak = max(_peak, _arrived)
    if _arrived == parties:
        here.set()
    try:
        # a guard against a hang, not a measure: the test fails if the
        # coroutines never run at once
        await asyncio.wait_for(here.wait(), 60)
        await asyncio.sleep(0)
        return value, _peak, subinterp.get_current().id
    finally:
        _arrived -= 1


class Gate:
    """A gate the coroutines of any interpreter wait for on their loop (a
    pipe readable once opened): no thread, no polling."""

    def __init__(self):
        import os

        self.fd, self._w = os.pipe()

    def open(self):
        import os

        os.write(self._w, b"x")

    # opened on leaving the block, so that a failing test does not leave
    # coroutines waiting on it (a pool's shutdown would wait for them):
    # enter it after the pool
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.open()

    def __del__(self):
        import os

        os.close(self.fd)
        os.close(self._w)


async def wait_gate(fd, started=None):
    """Wait on the loop for the Gate of read end *fd* to open."""
    if started is not None:
        started.put("started")
    import os

    loop = asyncio.get_running_loop()
    opened = loop.create_future()
    # a descriptor of its own: a loop has one reader per descriptor
    fd = os.dup(fd)
    loop.add_reader(fd, lambda: opened.done() or opened.set_result(None))
    try:
        await opened
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return "opened"


async def sleep_forever(started):
    started.put("started")
    await asyncio.sleep(3600)


def interp_id():
    return subinterp.get_current().id


def run_own_loop(x):
    """A plain task that runs an event loop of its own."""
    return asyncio.run(add_later(x, 1))


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


def say_then_get(started, q):
    """Say it started, then block in q.get() (a plain task)."""
    started.put("started")
    return q.get()

"""The article's two workloads, as importable functions.

Every variant of ``python -m subinterp bench`` calls these same functions.
They live in an importable module so that they cross to threads, processes
and interpreters by reference (module and qualified name), never as pickled
or copied code; the module imports nothing at the top, so importing it in a
new interpreter or process costs next to nothing.

The numbers are those of the article (docs/benchmarks.md):

* CPU-bound: ``cpu_worker(start, end)`` multiplies the integers
  ``start..end`` together (big-int products, nothing returned), over
  ``CPU_WORKLOADS = [(1, 10000), (10001, 20000), (20001, 30000),
  (30001, 40000)]``.
* IO-bound: ``io_worker(start, end, port)`` makes one HTTP GET per integer
  in ``start..end``, reusing one client (one keep-alive connection) per
  chunk, over ``IO_WORKLOADS = [(1, 5), (6, 10), (11, 15), (16, 20)]``.
"""

from __future__ import annotations

CPU_WORKLOADS = [(1, 10000), (10001, 20000), (20001, 30000), (30001, 40000)]
IO_WORKLOADS = [(1, 5), (6, 10), (11, 15), (16, 20)]
# The calibration's fixed piece of work (``bench cpu``): the first CPU
# chunk, run alone in one process and at once in W processes.
CALIBRATION_CHUNK = (1, 10000)

# Names accepted by io_worker's ``client`` argument.
CLIENTS = ("http.client", "httpx")


def cpu_worker(start: int, end: int) -> None:
    """Multiply the integers start..end together; return nothing."""
    product = 1
    for i in range(start, end + 1):
        product *= i


def io_worker(start: int, end: int, port: int, client: str = "http.client") -> None:
    """GET http://127.0.0.1:PORT/I for every I in start..end, one client.

    The server answers with the number it was asked for; a wrong answer or
    status raises ``RuntimeError``, so a variant cannot pass without having
    made every request.  *client* is ``"http.client"`` (the standard
    library, one keep-alive connection) or ``"httpx"`` (one
    ``httpx.Client``, as the article used).
    """
    if client == "httpx":
        import httpx

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            for i in range(start, end + 1):
                r = c.get(f"/{i}")
                _check(i, r.status_code, r.content)
    elif client == "http.client":
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for i in range(start, end + 1):
                conn.request("GET", f"/{i}")
                r = conn.getresponse()
                _check(i, r.status, r.read())
        finally:
            conn.close()
    else:
        raise ValueError(f"unknown client {client!r}; use one of {CLIENTS}")


async def io_get_async(i: int, port: int) -> None:
    """GET http://127.0.0.1:PORT/I as a coroutine: asyncio streams and a
    minimal HTTP/1.0 request (the server answers, then closes), checked
    as io_worker checks its answers.  The "async workers" variant runs
    each of the 20 GETs as one of these."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /{i} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()  # to the end: HTTP/1.0 closes
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(None, 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    _check(i, status, body)


def _check(i: int, status: int, body: bytes) -> None:
    if status != 200 or body != str(i).encode():
        raise RuntimeError(f"GET /{i}: status {status}, body {body[:80]!r}")


def scaled(workloads: list[tuple[int, int]], scale: float) -> list[tuple[int, int]]:
    """The same number of chunks with each chunk's length times *scale*
    (at least 1): the tests' way of shrinking the article's workloads."""
    if scale == 1:
        return list(workloads)
    length = max(1, round((workloads[0][1] - workloads[0][0] + 1) * scale))
    return [(i * length + 1, (i + 1) * length) for i in range(len(workloads))]


def median_time(fn, repeat: int) -> float:
    """Median wall time of *repeat* calls of fn(), in seconds (the
    micro-benchmarks under bench/)."""
    import statistics
    import time

    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def aio_ping(inq, outq, n: int, serve: bool) -> float:
    """One side of an asyncio ping-pong over two queues, in its own event
    loop (get_async/put_async): the server answers n items, the client
    sends n and waits for each answer.  Returns the seconds the loop
    took."""
    import asyncio
    import time

    async def main() -> float:
        t0 = time.perf_counter()
        for i in range(n):
            if serve:
                await outq.put_async(await inq.get_async())
            else:
                await outq.put_async(i)
                await inq.get_async()
        return time.perf_counter() - t0

    return asyncio.run(main())

"""The local HTTP server of the IO-bound benchmark.

A ``ThreadingHTTPServer`` on 127.0.0.1 (an ephemeral port unless one is
given) that answers ``GET /N`` with the body ``N`` after a fixed delay, over
HTTP/1.1 keep-alive connections.  The delay stands in for the network and
the remote server of the article, so the figures mean something without an
internet connection: 20 requests at 20 ms each are 400 ms when made one after
the other, whatever the machine.

The benchmark runs the server in a background thread of its own process (the
orchestrator), which never runs measured code: every variant runs in a child
process, so the server competes for no GIL of the code being measured.
docs/benchmarks.md shows what changes when the server shares the measured
process instead (``--server same-process``).
"""

from __future__ import annotations

import http.server
import threading
import time


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per client
    # TCP_NODELAY.  The headers and the body leave in two writes; with
    # Nagle's algorithm the second waits for the client's delayed ACK
    # (40 ms on Linux), which turned a 20 ms delay into 55 ms per request.
    disable_nagle_algorithm = True

    server: _Server

    def do_GET(self) -> None:
        # The deliberate per-response delay (the one sleep of the benchmark).
        time.sleep(self.server.delay)
        body = self.path.lstrip("/").encode("ascii", "replace") or b"ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.server.count_lock:
            self.server.requests += 1

    def log_message(self, format: str, *args: object) -> None:
        pass  # no line per request on stderr


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], delay: float) -> None:
        self.delay = delay
        self.requests = 0
        self.count_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that goes away mid-request (a variant stopped by Ctrl-C
        # or killed after a timeout) is not news: no traceback on stderr.
        import sys

        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class DelayServer:
    """Start with ``start()`` (raises ``OSError`` if the port is taken),
    stop with ``stop()``; also a context manager."""

    def __init__(self, delay: float, port: int = 0, host: str = "127.0.0.1") -> None:
        self.delay = delay
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> DelayServer:
        self._server = _Server((self.host, self.port), self.delay)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="subinterp-bench-http",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def requests(self) -> int:
        """How many requests were answered so far."""
        return self._server.requests if self._server else 0

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> DelayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

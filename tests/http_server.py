"""A local HTTP server for the download tests: it serves files the test makes, on 127.0.0.1.

It honours ``Range: bytes=N-`` (206 + Content-Range), records every request, and plays faults
queued per path: an HTTP status (404, 500, ...), a body cut short after some bytes, or a slow
body. Tests point ``elmo.hub`` at it with ``ELMO_MIRROR``; nothing ever leaves the machine.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Fault:
    """What to do instead of a plain answer, once.

    Args:
        status: answer with this HTTP status and no body (0: answer normally).
        cut_after: send the headers of the whole answer but only this many body bytes, then close.
        ignore_range: answer 200 with the whole file even when a Range was asked for.
        seconds_per_chunk: send the body in 10 chunks with this pause before each.
    """

    status: int = 0
    cut_after: int | None = None
    ignore_range: bool = False
    seconds_per_chunk: float = 0.0


class FileServer:
    """Serve ``files`` (URL path without the leading "/" -> bytes) from ``start`` to ``stop``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def requests_for(self, path: str) -> list[str | None]:
        """The Range header (or None) of every request for ``path`` so far."""
        with self._lock:
            return [range_ for got, range_ in self.requests if got == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _handler_for(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # the name http.server calls
            path = self.path.lstrip("/")
            range_header = self.headers.get("Range")
            with server._lock:
                server.requests.append((path, range_header))
                queued = server.faults.get(path)
                fault = queued.pop(0) if queued else Fault()
            if fault.status:
                self.send_error(fault.status)
                return
            if path not in server.files:
                self.send_error(404)
                return
            data = server.files[path]
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
            if match and not fault.ignore_range:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if fault.cut_after is not None:
                body = body[: fault.cut_after]
            step = max(1, -(-len(body) // 10))
            for offset in range(0, len(body), step):
                time.sleep(fault.seconds_per_chunk)
                self.wfile.write(body[offset : offset + step])
                self.wfile.flush()
            self.close_connection = True

    return Handler


def serve_published_model(server: FileServer, name: str, options, weights) -> None:
    """Serve a published-format model's two files where ``elmo.hub`` looks for the model ``name``
    below a mirror (``elmo.hub.MODELS``)."""
    from pathlib import Path

    from elmo.hub import MODELS

    server.files[MODELS[name].options.path] = Path(options).read_bytes()
    server.files[MODELS[name].weights.path] = Path(weights).read_bytes()

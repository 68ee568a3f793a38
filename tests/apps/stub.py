"""A stub upstream on 127.0.0.1: ``/ok`` answers 200, ``/status/<code>`` answers ``code``."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        code = 200
        if self.path.startswith("/status/"):
            code = int(self.path.rsplit("/", 1)[1])
        body = b'{"ok": true}' if code < 400 else b'{"error": true}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


def start_stub() -> ThreadingHTTPServer:
    """A stub server listening on a free port of 127.0.0.1, serving in a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="stub", daemon=True).start()
    return server

"""A webhook receiver on 127.0.0.1 that checks every request's HMAC-SHA256 signature, as a user's would.

It answers each POST with the next scripted status (200 once the script is used up); `stop()` closes
its port (a receiver that is down) and `start()` opens the same port again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "whsec-7Hq2-never-in-any-log"
TOKEN = "tok-Zx9Kp4"  # in the URL's path, as some services put a token there: never in any log either


@dataclass
class Received:
    event: str
    delivery: str
    body: dict[str, Any]
    signature_ok: bool


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (200 once the script is used up)."""

    secret: str = SECRET
    script: deque[int] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(
                    Received(
                        self.headers["X-Video-Assets-Event"],
                        self.headers["X-Video-Assets-Delivery"],
                        json.loads(body),
                        receiver.verify(body, self.headers.get("X-Video-Assets-Signature-256", "")),
                    )
                )
                status = receiver.script.popleft() if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: the port no longer accepts connections."""
        self._server.shutdown()
        self._server.server_close()

    def verify(self, body: bytes, header: str) -> bool:
        """What a receiver does: recompute the HMAC of the exact bytes and compare in constant time."""
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, header)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{TOKEN}"

    def events(self) -> list[tuple[str, str]]:
        return [(r.event, r.body["details"].get("status", "")) for r in self.received]

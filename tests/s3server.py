"""A real S3 endpoint for tests: moto's ThreadedMotoServer on 127.0.0.1, spoken to over HTTP.

Its WSGI app is wrapped to record every request (so tests can assert which prefixes were
listed) and to answer chosen keys with errors (throttling, server errors) the way S3 does,
so the client's retries run for real.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

_SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
              b"<Message>Please reduce your request rate.</Message></Error>")
_INTERNAL = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
             b"<Message>We encountered an internal error. Please try again.</Message></Error>")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    payer: str | None = None  # the x-amz-request-payer header

    @property
    def is_list(self) -> bool:
        return self.method == "GET" and ("list-type" in self.query or "prefix" in self.query
                                         or "delimiter" in self.query)

    @property
    def prefix(self) -> str:
        return self.query.get("prefix", [""])[0]


class S3Server(ThreadedMotoServer):
    """moto's ThreadedMotoServer on 127.0.0.1 and a free port, its app wrapped to record and to fail on demand."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.requests: list[Request] = []
        #: key substring → how many more GETs of it fail (-1: always); 503 SlowDown, or 500 when in `hard`
        self.faults: dict[str, int] = {}
        self.hard: set[str] = set()
        self._lock = threading.Lock()
        self.start()
        host, port = self.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)

        def wrapped(environ, start_response):
            req = Request(environ["REQUEST_METHOD"], unquote(environ.get("PATH_INFO", "")),
                          parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
                          environ.get("HTTP_X_AMZ_REQUEST_PAYER"))
            with self._lock:
                self.requests.append(req)
                fault = next((k for k, n in self.faults.items() if n != 0 and k in req.path), None)
                if fault and req.method == "GET" and not req.is_list:
                    if self.faults[fault] > 0:
                        self.faults[fault] -= 1
                    body, status = (_INTERNAL, "500 Internal Server Error") if fault in self.hard else (
                        _SLOW_DOWN, "503 Slow Down")
                    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
                    return [body]
            return app(environ, start_response)

        self._server = make_server(self._ip_address, self._port, wrapped, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    def lists(self) -> list[str]:
        """The prefixes of every listing request so far (bucket/prefix)."""
        return [r.path.strip("/") + "/" + r.prefix for r in self.requests if r.is_list]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

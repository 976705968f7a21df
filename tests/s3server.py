"""A real S3 endpoint for tests: moto's server on 127.0.0.1, spoken to over HTTP.

The same WSGI app ThreadedMotoServer runs, wrapped to record every request (so tests can
assert which prefixes were listed) and to answer chosen keys with errors (throttling,
server errors) the way S3 does, so the client's retries run for real.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

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


@dataclass
class S3Server:
    requests: list[Request] = field(default_factory=list)
    #: key substring → how many more GETs of it fail (-1: always); 503 SlowDown, or 500 when `hard`
    faults: dict[str, int] = field(default_factory=dict)
    hard: set[str] = field(default_factory=set)
    endpoint: str = ""

    def __post_init__(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._lock = threading.Lock()
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

        self._server = make_server("127.0.0.1", 0, wrapped, threaded=True, request_handler=MotoRequestHandler)
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()

    def lists(self) -> list[str]:
        """The prefixes of every listing request so far (bucket/prefix)."""
        return [r.path.strip("/") + "/" + r.prefix for r in self.requests if r.is_list]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

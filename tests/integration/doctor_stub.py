"""A stand-in for an OpenSearch that lacks one feature: it forwards to the real server, except
the requests that use that feature, which it refuses (HTTP 400) or strips of it (the feature
accepted and ignored). It stands in for such a server and models nothing else."""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from tests.support import OPENSEARCH_URL

__all__ = ["IGNORABLE", "REFUSABLE", "stub_without"]

Match = Callable[[str, str, bytes], bool]


def _bulk_with(key: bytes) -> Match:
    return lambda method, path, body: path.split("?")[0].endswith("/_bulk") and key in body


def _path_ends(suffix: str) -> Match:
    return lambda method, path, body: path.split("?")[0].endswith(suffix)


def _settings_with(key: bytes) -> Match:
    return lambda method, path, body: method == "PUT" and "/_settings" in path and key in body


REFUSABLE: dict[str, Match] = {
    "create_index": lambda m, p, b: m == "PUT" and re.fullmatch(r"/ddbsync-doctor-[0-9a-f]+", p) is not None,
    "mapping_meta": lambda m, p, b: m == "PUT" and "/_mapping" in p and b'"_meta"' in b,
    "settings_replicas": _settings_with(b"number_of_replicas"),
    "settings_refresh_interval": _settings_with(b"refresh_interval"),
    "filtered_alias": lambda m, p, b: p.startswith("/_aliases") and b'"filter"' in b,
    "require_alias": _bulk_with(b'"require_alias"'),
    "external_version": _bulk_with(b'"version_type"'),
    "mget": _path_ends("/_mget"),
    "if_seq_no": _bulk_with(b'"if_seq_no"'),
    "refresh": _path_ends("/_refresh"),
    "alias_filter_search": lambda m, p, b: "-live/_search" in p,
    "delete_by_query": _path_ends("/_delete_by_query"),
}


def _strip_bulk(*keys: str) -> Callable[[str, bytes], tuple[str, bytes]]:
    def strip(path: str, body: bytes) -> tuple[str, bytes]:
        lines = body.split(b"\n")
        out = []
        for i, line in enumerate(lines):
            if i % 2 == 0 and line:
                action = orjson.loads(line)
                for params in action.values():
                    for key in keys:
                        params.pop(key, None)
                line = orjson.dumps(action)
            out.append(line)
        return path, b"\n".join(out)

    return strip


def _unfiltered_aliases(path: str, body: bytes) -> tuple[str, bytes]:
    actions = orjson.loads(body)
    for action in actions["actions"]:
        action.get("add", {}).pop("filter", None)
    return path, orjson.dumps(actions)


# The feature accepted and ignored: (which requests, how they are rewritten).
IGNORABLE: dict[str, tuple[Match, Callable[[str, bytes], tuple[str, bytes]]]] = {
    "external_version": (REFUSABLE["external_version"], _strip_bulk("version", "version_type")),
    "if_seq_no": (REFUSABLE["if_seq_no"], _strip_bulk("if_seq_no", "if_primary_term")),
    "require_alias": (REFUSABLE["require_alias"], _strip_bulk("require_alias")),
    "filtered_alias": (REFUSABLE["filtered_alias"], _unfiltered_aliases),
    "alias_filter_search": (
        REFUSABLE["alias_filter_search"],
        lambda p, b: (p.replace("-live/_search", "/_search"), b),
    ),
}


def _handler(feature: str, how: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path
            if how == "refuse" and REFUSABLE[feature](self.command, path, body):
                error = {"type": "illegal_argument_exception", "reason": f"stub: {feature} is not supported"}
                self._answer(400, orjson.dumps({"error": error, "status": 400}))
                return
            if how == "drop" and REFUSABLE[feature](self.command, path, body):
                self.close_connection = True  # no answer at all: the connection drops
                return
            if how == "ignore" and IGNORABLE[feature][0](self.command, path, body):
                path, body = IGNORABLE[feature][1](path, body)
            self._forward(path, body)

        def _forward(self, path: str, body: bytes) -> None:
            request = urllib.request.Request(
                OPENSEARCH_URL + path,
                data=body or None,
                method=self.command,
                headers={"Content-Type": self.headers.get("Content-Type") or "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    self._answer(response.status, response.read())
            except urllib.error.HTTPError as e:
                self._answer(e.code, e.read())

        def _answer(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    return Handler


@contextmanager
def stub_without(feature: str, how: str = "refuse") -> Iterator[str]:
    """The URL of a stub that refuses (``refuse``), ignores (``ignore``) or hangs up on (``drop``)
    the requests that use ``feature``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(feature, how))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()

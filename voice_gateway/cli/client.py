"""The HTTP side of the CLI: one blocking client, the key from $VOICEGW_API_KEY, errors as text."""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sseclient import SSEClient


class CliError(Exception):
    pass


@dataclass
class ApiClient:
    base_url: str
    api_key: str = field(repr=False)

    @classmethod
    def from_env(cls, url: str | None) -> ApiClient:
        base = url or os.environ.get("VOICEGW_URL") or "http://127.0.0.1:8080"
        return cls(base_url=base.rstrip("/"), api_key=os.environ.get("VOICEGW_API_KEY", ""))

    def get(self, path: str, query: dict[str, str] | None = None) -> Any:
        if query:
            path += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        return self._request("GET", path, None)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._request("POST", path, body or {})

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[tuple[str, str]]:
        """POSTs `body` and yields each server-sent event as (event, data) as it arrives."""
        request = self._build("POST", path, body, accept="text/event-stream")
        with self._open(request, path) as resp:
            for event in SSEClient(resp).events():
                yield event.event, event.data

    def delete(self, path: str) -> Any:
        return self._request("DELETE", path, None)

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        with self._open(self._build(method, path, body), path) as resp:
            return json.loads(resp.read() or b"null")

    def _build(
        self, method: str, path: str, body: dict[str, Any] | None, accept: str = "application/json"
    ) -> urllib.request.Request:
        if not self.api_key:
            raise CliError("set VOICEGW_API_KEY to an API key with the needed scope")
        data = json.dumps(body).encode() if body is not None else None
        return urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "x-api-key": self.api_key,
                "content-type": "application/json",
                "accept": accept,
            },
        )

    @contextlib.contextmanager
    def _open(self, request: urllib.request.Request, path: str) -> Iterator[Any]:
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                yield resp
        except urllib.error.HTTPError as exc:
            try:
                err = json.loads(exc.read())["error"]
                raise CliError(f"{exc.code} {err['code']}: {err['message']}") from None
            except (ValueError, KeyError, TypeError):
                raise CliError(f"HTTP {exc.code} from {path}") from None
        except urllib.error.URLError as exc:
            raise CliError(f"cannot reach the gateway at {self.base_url}: {exc.reason}") from None


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max([len(c)] + [len(_cell(r.get(c))) for r in rows]) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(_cell(row.get(c)).ljust(widths[c]) for c in columns))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def emit(args: Any, payload: Any, rows: list[dict[str, Any]] | None, columns: list[str]) -> None:
    if args.json or rows is None:
        print(json.dumps(payload, indent=2))
    else:
        print_table(rows, columns)

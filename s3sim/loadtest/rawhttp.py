"""A minimal HTTP/1.1 keep-alive client on asyncio protocols, built for load generation.

One `HttpConnection` carries one request at a time (no pipelining). Response bodies are
counted as they arrive and dropped, unless the caller asks to keep them (small JSON/XML
bodies); error bodies are always kept, up to `MAX_KEPT`. Request bodies are written from
memoryviews in slices, with transport flow control, so nothing large is copied.
aiohttp's client tops out near 7k small requests/s per process on this machine; this one
does roughly twice that (see docs/LOADTEST.md).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import urlsplit

from kmscore.frozen import frozen

MAX_KEPT = 1 << 20
WRITE_SLICE = 1 << 20
_HEAD, _LENGTH, _CHUNKED, _EOF, _DONE = range(5)


class ConnectionFailed(Exception):
    """The connection broke or the server sent something that is not HTTP/1.x."""


class RequestTimeout(ConnectionFailed):
    """No complete answer within the connection's timeout (the connection is closed)."""


@frozen
class Endpoint:
    host: str
    port: int
    tls: bool
    host_header: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be http(s)://host[:port], got {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        default = (tls and port == 443) or (not tls and port == 80)
        host_header = parts.hostname if default else f"{parts.hostname}:{port}"
        return cls(parts.hostname, port, tls, host_header)


class Headers(Mapping[str, str]):
    """A response's header fields (names lower-cased), parsed from the raw head only when
    read: a load run looks at few of them, and the framing ones are found directly.
    A repeated field keeps its last value."""

    __slots__ = ("_fields", "_map")

    def __init__(self, fields: str = "") -> None:
        self._fields = fields  # the head after the status line, CRLF-separated
        self._map: dict[str, str] | None = None

    def _parsed(self) -> dict[str, str]:
        if self._map is None:
            self._map = {}
            for line in self._fields.split("\r\n"):
                name, _, value = line.partition(":")
                if name:
                    self._map[name.strip().lower()] = value.strip()
        return self._map

    def __getitem__(self, name: str) -> str:
        return self._parsed()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())


def _field(low: str, name: str) -> str | None:
    """A framing field's value in `low` ("\r\n" + the lower-cased fields); the last one."""
    at = low.rfind(f"\r\n{name}:")
    if at < 0:
        return None
    start = at + len(name) + 3
    end = low.find("\r\n", start)
    return low[start : end if end >= 0 else len(low)].strip()


@frozen  # one per request: the cheaper __init__ (kmscore/frozen.py)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    nbytes: int


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buf = bytearray()
        self._state = _DONE
        self._waiter: asyncio.Future[Response] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._paused = False
        self.timed_out = False
        self.answered = False  # any byte of an answer to the current request
        self._reset(False, False)

    def _reset(self, keep: bool, head_only: bool) -> None:
        self._keep = keep
        self._head_only = head_only
        self._status = 0
        self._headers = Headers()
        self._body = bytearray()
        self._nbytes = 0
        self._remaining = 0
        self._close_after = False

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._state == _EOF:
            self._finish()
        elif self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionFailed(str(exc or "connection closed")))
        self._wake_writer()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_writer()

    def _wake_writer(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.answered = True
        try:
            self._feed(data)
        except (ValueError, IndexError) as exc:
            self._fail(ConnectionFailed(f"bad HTTP response: {exc}"))

    # request side
    def begin(self, keep: bool, head_only: bool) -> asyncio.Future[Response]:
        self._reset(keep, head_only)
        self.answered = False
        self._buf.clear()
        self._state = _HEAD
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    async def drain(self) -> None:
        if self.closed:
            raise ConnectionFailed("connection closed while sending")
        if self._paused:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain
            if self.closed:
                raise ConnectionFailed("connection closed while sending")

    # response parsing
    def _feed(self, data: bytes | memoryview) -> None:
        state = self._state
        if state == _LENGTH:
            self._take(data)
        elif state == _HEAD:
            # the body's first bytes often come with the head: never copy them here
            # (a 256 KiB read copied twice through a growing buffer cost a 1 MiB GET
            # ~2x the client's CPU)
            if self._buf or isinstance(data, memoryview):
                self._buf += data
                data = bytes(self._buf)  # a head split over reads: rare
                self._buf.clear()
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._buf += data
                return
            self._parse_head(data[:end])
            if len(data) > end + 4 and self._state != _DONE:
                self._feed(memoryview(data)[end + 4 :])
        elif state == _CHUNKED:
            self._buf += data
            self._chunked()
        elif state == _EOF:
            self._count(data)

    def _parse_head(self, head: bytes) -> None:
        status_line, _, fields = head.decode("latin-1").partition("\r\n")
        if not status_line.startswith("HTTP/1."):
            raise ValueError(status_line[:40])
        self._status = status = int(status_line[9:12])
        self._headers = Headers(fields)
        low = "\r\n" + fields.lower()
        conn = _field(low, "connection") or ""
        self._close_after = conn == "close" or (status_line[7] == "0" and conn != "keep-alive")
        if status < 200 and status != 101:
            self._headers = Headers()
            self._state = _HEAD
            return
        if status >= 300:
            self._keep = True
        if self._head_only or status in (204, 304):
            self._finish()
        elif "chunked" in (_field(low, "transfer-encoding") or ""):
            self._state = _CHUNKED
            self._remaining = -1
        elif (length := _field(low, "content-length")) is not None:
            self._remaining = int(length)
            self._state = _LENGTH
            if self._remaining == 0:
                self._finish()
        else:
            self._state = _EOF
            self._close_after = True

    def _count(self, data: bytes | memoryview) -> None:
        self._nbytes += len(data)
        if self._keep and len(self._body) < MAX_KEPT:
            self._body += data[: MAX_KEPT - len(self._body)]

    def _take(self, data: bytes | memoryview) -> None:
        n = len(data)
        if n < self._remaining:
            self._remaining -= n
            self._count(data)
            return
        self._count(memoryview(data)[: self._remaining] if n > self._remaining else data)
        self._remaining = 0
        self._finish()

    def _chunked(self) -> None:
        buf = self._buf
        while self._state == _CHUNKED:
            if self._remaining > 0:  # inside chunk data
                n = min(self._remaining, len(buf))
                if n == 0:
                    return
                self._count(memoryview(buf)[:n])
                del buf[:n]
                self._remaining -= n
                if self._remaining == 0:
                    self._remaining = -2  # expect CRLF after data
                continue
            eol = buf.find(b"\r\n")
            if eol < 0:
                return
            line = bytes(buf[:eol])
            del buf[: eol + 2]
            if self._remaining == -2:  # the CRLF closing a chunk
                self._remaining = -1
            elif self._remaining == -1:  # a size line
                size = int(line.split(b";", 1)[0], 16)
                self._remaining = size if size else -3
            elif not line:  # -3: trailers until the empty line
                self._finish()

    def _finish(self) -> None:
        self._state = _DONE
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(
                Response(self._status, self._headers, bytes(self._body), self._nbytes)
            )
        if self._close_after and self.transport is not None:
            self.transport.close()
            self.closed = True

    def in_flight(self) -> bool:
        return self._waiter is not None and not self._waiter.done()

    def expire(self) -> None:
        self.timed_out = True
        self._fail(RequestTimeout("request timed out"))

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()
        self.closed = True


class HttpConnection:
    """One keep-alive connection to an endpoint, reopened when the server closes it."""

    def __init__(
        self,
        endpoint: Endpoint,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        # one watchdog timer per connection instead of a timer per request (creating and
        # cancelling a TimerHandle each time was ~6% of the generator's Python work)
        self._tick = min(1.0, timeout_s / 4)
        self._deadline = 0.0  # of the request in flight
        self._watch: asyncio.TimerHandle | None = None
        self._ssl = ssl_context if endpoint.tls else None
        if endpoint.tls and self._ssl is None:
            self._ssl = ssl.create_default_context()
        self._proto: _Protocol | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        try:
            _, proto = await loop.create_connection(_Protocol, ep.host, ep.port, ssl=self._ssl)
        except OSError as exc:
            raise ConnectionFailed(f"cannot connect to {ep.host}:{ep.port}: {exc}") from exc
        return proto

    async def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Iterable[bytes | memoryview] = (),
        keep_body: bool = False,
    ) -> Response:
        """Send one request; `headers` must include Content-Length when there is a body.
        Retries once on a fresh connection if a reused one was closed before any reply."""
        proto = self._proto
        fresh = proto is None or proto.closed
        if fresh:
            proto = self._proto = await self._connect()
        try:
            return await self._exchange(proto, method, target, headers, body, keep_body)
        except ConnectionFailed as exc:
            self.close()
            # A reused connection the server had closed while idle: no byte of an answer.
            if fresh or isinstance(exc, RequestTimeout) or proto.answered:
                raise
        proto = self._proto = await self._connect()
        return await self._exchange(proto, method, target, headers, body, keep_body)

    async def _exchange(
        self,
        proto: _Protocol,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Iterable[bytes | memoryview],
        keep_body: bool,
    ) -> Response:
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {self.endpoint.host_header}\r\n"]
        lines.extend([f"{k}: {v}\r\n" for k, v in headers.items()])
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        waiter = proto.begin(keep_body, method == "HEAD")
        transport = proto.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self.timeout_s
        if self._watch is None:
            self._watch = loop.call_later(self._tick, self._check)
        try:
            try:
                await self._send(proto, transport, head, body)
            except ConnectionFailed:
                # The server may answer early (e.g. 400) and close before reading the body.
                if not waiter.done() or waiter.cancelled() or waiter.exception() is not None:
                    raise
            return await waiter
        except ConnectionFailed:
            if proto.timed_out:
                raise RequestTimeout(f"{method} {target}: no answer in {self.timeout_s}s") from None
            raise

    def _check(self) -> None:
        """Expire the request in flight once past its deadline; stop when idle."""
        proto = self._proto
        if proto is None or not proto.in_flight():
            self._watch = None
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self._deadline:
            proto.expire()
        self._watch = loop.call_later(self._tick, self._check)

    @staticmethod
    async def _send(proto: _Protocol, transport: asyncio.Transport, head: bytes, body) -> None:
        chunks = iter(body)
        first = next(chunks, None)
        if first is not None and len(first) <= 65536:
            transport.write(head + first)
        else:
            transport.write(head)
            if first is not None:
                await _write_slices(proto, transport, first)
        for chunk in chunks:
            await _write_slices(proto, transport, chunk)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None


async def _write_slices(proto: _Protocol, transport: asyncio.Transport, chunk) -> None:
    view = memoryview(chunk)
    for off in range(0, len(view), WRITE_SLICE):
        await proto.drain()
        transport.write(view[off : off + WRITE_SLICE])

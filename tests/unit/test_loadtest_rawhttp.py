"""The raw HTTP/1.1 client against canned server bytes: framing, keep-alive, timeouts."""

import asyncio

import pytest

from s3sim.loadtest.rawhttp import (
    ConnectionFailed,
    Endpoint,
    HttpConnection,
    RequestTimeout,
)


async def canned(replies: list[list[bytes]], close_after: bool = False):
    """A server answering each request (read up to the blank line + Content-Length) with the
    next reply, written as separate chunks."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while replies:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            body = await reader.readexactly(length)
            seen.append(head + body)
            for part in replies.pop(0):
                writer.write(part)
                await writer.drain()
                await asyncio.sleep(0)
            if close_after:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, Endpoint.parse(f"http://127.0.0.1:{port}"), seen


ERR = b"<Error><Code>NoSuchKey</Code></Error>"


async def test_content_length_keep_alive_and_bodies():
    replies = [
        [b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "e"\r\n\r\nhel', b"lo"],
        [b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(ERR), ERR)],
    ]
    server, ep, seen = await canned(replies)
    async with server:
        conn = HttpConnection(ep)
        r1 = await conn.request("GET", "/b/k", {})
        assert (r1.status, r1.nbytes, r1.body, r1.headers["etag"]) == (200, 5, b"", '"e"')
        r2 = await conn.request("PUT", "/b/k", {"Content-Length": "3"}, [memoryview(b"abc")])
        assert r2.status == 404 and r2.body.startswith(b"<Error><Code>NoSuchKey")
        assert seen[1].endswith(b"\r\n\r\nabc") and b"Host: 127.0.0.1:" in seen[1]
        conn.close()


async def test_chunked_with_trailers_and_100_continue():
    replies = [
        [
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab",
            b"cd\r\n3;ext=1\r\nefg\r\n0\r\nx-trailer: 1\r\n\r\n",
        ],
        [b"HTTP/1.1 204 No Content\r\n\r\n"],
    ]
    server, ep, _ = await canned(replies)
    async with server:
        conn = HttpConnection(ep)
        r = await conn.request("GET", "/", {}, keep_body=True)
        assert (r.status, r.body, r.nbytes) == (200, b"abcdefg", 7)
        assert (await conn.request("DELETE", "/", {})).status == 204
        conn.close()


async def test_body_until_eof_and_reconnect_after_close():
    replies = [
        [b"HTTP/1.0 200 OK\r\n\r\n", b"x" * 1000],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"],
    ]
    server, ep, seen = await canned(replies, close_after=True)
    async with server:
        conn = HttpConnection(ep)
        r = await conn.request("GET", "/", {})
        assert (r.status, r.nbytes) == (200, 1000)
        r = await conn.request("HEAD", "/", {})  # new connection, server closes after it
        assert r.status == 200 and len(seen) == 2
        conn.close()


async def test_large_upload_in_slices():
    payload = memoryview(bytes(range(256)) * (3 * 4096 + 1))  # ~3 MiB, not slice-aligned
    replies = [[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]]
    server, ep, seen = await canned(replies)
    async with server:
        conn = HttpConnection(ep)
        headers = {"Content-Length": str(len(payload))}
        assert (await conn.request("PUT", "/big", headers, [payload])).status == 200
        assert seen[0].endswith(bytes(payload))
        conn.close()


async def test_timeout_and_refused():
    async def silent(reader, writer):
        await reader.read(100)
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        conn = HttpConnection(Endpoint.parse(f"http://127.0.0.1:{port}"), timeout_s=0.2)
        with pytest.raises(RequestTimeout):
            await conn.request("GET", "/", {})
        conn.close()
    with pytest.raises(ConnectionFailed):
        await HttpConnection(Endpoint.parse("http://127.0.0.1:1")).request("GET", "/", {})


async def delayed(delays: list[float]):
    """A server answering its n-th request after delays[n] seconds (200, empty body)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for delay in delays:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(delay)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, Endpoint.parse(f"http://127.0.0.1:{port}")


async def test_a_request_times_out_within_a_watchdog_tick_of_its_deadline():
    server, ep = await delayed([5.0])
    async with server:
        conn = HttpConnection(ep, timeout_s=0.4)  # the watchdog ticks every 0.1 s
        t0 = asyncio.get_running_loop().time()
        with pytest.raises(RequestTimeout):
            await conn.request("GET", "/", {})
        elapsed = asyncio.get_running_loop().time() - t0
        assert 0.4 <= elapsed < 0.4 + 0.1 + 0.15
        conn.close()


async def test_answers_inside_the_timeout_survive_the_watchdog_which_stops_when_idle():
    """Each request gets its own deadline: three answers of 0.25 s each under a 0.4 s
    timeout all arrive (1.75 ticks each), though the connection was busy 0.75 s."""
    server, ep = await delayed([0.25, 0.25, 0.25])
    async with server:
        conn = HttpConnection(ep, timeout_s=0.4)
        for _ in range(3):
            assert (await conn.request("GET", "/", {})).status == 200
        assert conn._watch is not None  # armed while requests come
        await asyncio.sleep(0.25)  # idle for two ticks
        assert conn._watch is None
        conn.close()


async def test_garbage_reply_is_a_connection_failure():
    server, ep, _ = await canned([[b"SSH-2.0-nope\r\n\r\n"]])
    async with server:
        with pytest.raises(ConnectionFailed):
            await HttpConnection(ep).request("GET", "/", {})


def test_endpoint_parse():
    assert Endpoint.parse("http://localhost").host_header == "localhost"
    assert Endpoint.parse("https://h:8443").port == 8443
    with pytest.raises(ValueError):
        Endpoint.parse("ftp://x")


async def test_framing_fields_in_any_case_and_headers_read_lazily():
    replies = [
        [b"HTTP/1.1 200 OK\r\nX-Amz-Request-Id: r1\r\nCONTENT-LENGTH:  4 \r\n\r\nbody"],
        [b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Close\r\n\r\nok"],
    ]
    server, ep, _ = await canned(replies)
    async with server:
        conn = HttpConnection(ep)
        r1 = await conn.request("GET", "/a", {})
        assert (r1.nbytes, r1.headers.get("x-amz-request-id"), len(r1.headers)) == (4, "r1", 2)
        assert dict(r1.headers) == {"x-amz-request-id": "r1", "content-length": "4"}
        r2 = await conn.request("GET", "/b", {})
        assert r2.nbytes == 3 and "etag" not in r2.headers
        r3 = await conn.request("GET", "/c", {})
        assert r3.nbytes == 2 and conn._proto is not None and conn._proto.closed
        conn.close()


def test_a_repeated_field_keeps_its_last_value():
    from s3sim.loadtest.rawhttp import Headers, _field

    fields = "ETag: a\r\nEtag: b\r\nContent-Length: 1\r\ncontent-length: 7"
    assert Headers(fields)["etag"] == "b"
    assert _field("\r\n" + fields.lower(), "content-length") == "7"
    assert _field("\r\n" + fields.lower(), "connection") is None


@pytest.mark.parametrize(
    "raw,body",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", b"0123456789"),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n3\r\nabc\r\n0\r\n\r\n",
            b"abc",
        ),
    ],
)
async def test_a_response_split_anywhere_parses_the_same(raw, body):
    from s3sim.loadtest.rawhttp import _Protocol

    for cuts in [(), *((i,) for i in range(1, len(raw))), (5, 30, 31, 45)]:
        proto = _Protocol()
        done = proto.begin(keep=True, head_only=False)
        edges = [0, *(c for c in cuts if c < len(raw)), len(raw)]
        for lo, hi in zip(edges, edges[1:], strict=False):
            proto.data_received(raw[lo:hi])
        r = done.result()
        assert (r.status, r.body, r.nbytes) == (200, body, len(body)), cuts

"""The gateway's lean HTTP/1.1 client to the local model: chunked decoding as a property, and the
real SGLang stand-in (uvicorn) behind the gateway for keep-alive, failures and plain bodies."""

from __future__ import annotations

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridges.api.upstream import ChunkedDecoder, UpstreamError
from tests.api_helpers import WRITER, api_bed


def chunked(pieces: list[bytes], ext: bool, trailers: bool) -> bytes:
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), b";x=1" if ext else b"", p) for p in pieces if p)
    return out + b"0\r\n" + (b"x-trailer: 1\r\n" if trailers else b"") + b"\r\n"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=12), st.booleans(), st.booleans(),
       st.lists(st.integers(1, 97), max_size=60), st.binary(max_size=20))
def test_chunked_body_decodes_the_same_however_the_bytes_are_cut(pieces, ext, trailers, cuts, after):
    wire = chunked(pieces, ext, trailers)
    decoder, got, pos = ChunkedDecoder(), [], 0
    for cut in [*cuts, len(wire)]:
        got += decoder.feed(wire[pos:pos + cut])
        pos += cut
        if pos >= len(wire):
            break
    assert decoder.done and b"".join(got) == b"".join(pieces)
    assert decoder.feed(after) == []  # bytes after the end belong to no body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_a_malformed_chunked_body_is_an_upstream_error_never_another_exception(junk):
    decoder = ChunkedDecoder()
    try:
        for i in range(0, len(junk), 7):
            decoder.feed(junk[i:i + 7])
    except UpstreamError as exc:
        assert "malformed chunked body" in str(exc)


async def test_sequential_turns_reuse_one_kept_alive_connection_and_plain_bodies_pass(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=WRITER, max_retries=0)
        for i in range(3):
            stream = await client.chat.completions.create(model="local", stream=True,
                                                          messages=[{"role": "user", "content": f"n{i}"}])
            assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == f"You said: n{i}"
            whole = await client.chat.completions.create(model="local", messages=[{"role": "user", "content": "w"}])
            assert whole.choices[0].message.content == "You said: w"
        assert [len(v) for v in bed.hub.extras["api"].upstream._idle.values()] == [1]
        await client.close()


async def test_a_local_model_that_drops_the_connection_mid_answer_is_an_error_the_sdk_sees(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        await bed.post(bed.sglang, "/_sim/faults", {"add": [{"kind": "disconnect", "after_tokens": 3}]})
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=WRITER, max_retries=0)
        stream = await client.chat.completions.create(model="local", stream=True,
                                                      messages=[{"role": "user", "content": "[[tokens 20]]"}])
        with pytest.raises(openai.APIError, match="failed mid-answer"):
            async for _ in stream:
                pass
        answer = await client.chat.completions.create(model="local", messages=[{"role": "user", "content": "again"}])
        assert answer.choices[0].message.content == "You said: again"  # a fresh connection
        await client.close()


async def test_a_local_model_that_is_down_is_a_502(tmp_path):
    async with api_bed(tmp_path) as (bed, url):
        bed.hub.config.llm.local.base_url = bed.dead_local
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=WRITER, max_retries=0)
        with pytest.raises(openai.APIStatusError) as failed:
            await client.chat.completions.create(model="local", messages=[{"role": "user", "content": "hi"}])
        assert failed.value.status_code == 502 and "local model failed" in failed.value.message
        await client.close()


async def test_a_kept_alive_connection_the_server_closed_is_replaced_and_the_request_sent_once_more():
    """A server that answers the first request of a connection and closes the connection on the next
    one without answering (a keep-alive timeout racing the request): the client sends it again on a
    fresh connection, once; and a connection idle past IDLE_S is not reused at all."""
    import asyncio

    from bridges.api import upstream as up

    seen: list[int] = []  # requests answered
    received: list[int] = []  # requests read, answered or not

    async def serve(reader, writer):
        served = 0
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            body = await reader.readexactly(length)
            received.append(len(body))
            if served:
                writer.close()
                return
            served += 1
            seen.append(len(body))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/completions"
    client = up.Upstream()
    try:
        for _ in range(3):
            async with client.post(url, b"{}", {"content-type": "application/json"}) as resp:
                assert resp.status_code == 200 and await resp.aread() == b"ok"
        assert len(seen) == 3 and len(received) == 5  # each reuse met a closed connection and went again
        client._idle[("127.0.0.1", server.sockets[0].getsockname()[1])][0].idle_since -= up.IDLE_S
        async with client.post(url, b"{}", {}) as resp:
            assert await resp.aread() == b"ok"
        assert len(seen) == 4 and len(received) == 6  # the old idle connection was not tried
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()

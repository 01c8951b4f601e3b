"""Malformed input over real HTTP (aiohttp client and raw sockets) against a real gateway:
every case is answered 4xx with a JSON RequestError naming what to fix, nothing reaches the
log as a traceback or above INFO, no token reaches the log, slow clients are cut off, and
the gateway keeps serving after each case."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection

from ivrbot.config import Settings
from ivrbot.endpoints.webrtc.sdpcheck import MAX_MEDIA_SECTIONS, MAX_SDP_BYTES
from ivrbot.redact import redact
from ivrbot.wire.http import MAX_BODY, MAX_DEPTH
from ivrbot.wire.server import GatewayServer
from tests.log_secrets import SecretWatch
from tests.wire.wire import call, error_text, message_id, new_token

RTC = "/RTC/v1"
HEADER_TIMEOUT, BODY_TIMEOUT, KEEPALIVE = 1.0, 1.0, 2.0
SLACK = 2.5  # scheduling on a shared 2-core machine


class Gw:
    """A running gateway, a client, and a user with a session (token + session path)."""

    def __init__(self, server: GatewayServer, client: aiohttp.ClientSession) -> None:
        self.server, self.client = server, client
        self.token, self.session = "", ""

    @property
    def port(self) -> int:
        return self.server.settings.port

    async def user(self, name: str) -> tuple[str, str]:
        token = (await new_token(self.client, "ACCOUNT_ID"))["access_token"]
        status, _, _ = await call(self.client, "PUT", f"{RTC}/userIds/{name}@ivrbot.local", token)
        assert status == 204
        status, _, headers = await call(
            self.client, "POST", f"{RTC}/sessions", token, json={"session": {}}
        )
        assert status == 201
        return token, headers["Location"]

    async def serving(self) -> None:
        """The gateway still answers: config, and an authenticated request."""
        status, body, _ = await call(self.client, "GET", "/config")
        assert status == 200 and body["ewebrtc_uri"] == RTC
        status, _, _ = await call(self.client, "PUT", self.session, self.token, json={})
        assert status == 204


@pytest.fixture
async def gw(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Gw]:
    caplog.set_level(logging.INFO)
    settings = Settings(
        port=0,
        db=str(tmp_path / "gateway.db"),
        header_timeout_s=HEADER_TIMEOUT,
        body_timeout_s=BODY_TIMEOUT,
        keepalive_timeout_s=KEEPALIVE,
        rate_limit=0,
    )
    server = GatewayServer(settings)
    await server.start()
    try:
        async with aiohttp.ClientSession(server.url) as client:
            g = Gw(server, client)
            g.token, g.session = await g.user("alice")
            yield g
            await g.serving()
    finally:
        await server.stop()
    quiet_log(caplog)


def quiet_log(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing above INFO and no traceback from the gateway or aiohttp."""
    loud = [
        f"{r.name} {r.levelname} {r.getMessage()}"
        for r in caplog.records
        if r.name.startswith(("ivrbot", "aiohttp"))
        and (r.levelno > logging.INFO or r.exc_info or r.exc_text)
    ]
    assert not loud, loud
    assert "Traceback" not in caplog.text


def request_error(body: Any) -> tuple[str, str]:
    assert isinstance(body, dict) and "RequestError" in body, body
    return message_id(body), error_text(body)


async def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the gateway closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def parse_response(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body) if body else None


# JSON bodies ------------------------------------------------------------------------------
@pytest.mark.contract
@pytest.mark.parametrize("depth", [100_000, MAX_DEPTH + 1])
async def test_deeply_nested_json_is_400(gw: Gw, depth: int) -> None:
    for nested in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        if len(nested) > MAX_BODY:
            continue
        for path, token in (("/tokens", None), (f"{RTC}/sessions", gw.token)):
            status, body, _ = await call(
                gw.client, "POST", path, token, data=nested, headers=JSON_CT
            )
            assert status == 400, (path, body)
            assert request_error(body) == (
                "SVC0002",
                f"Invalid input value for message part body (nested deeper than {MAX_DEPTH} levels)",
            )
    await gw.serving()


@pytest.mark.contract
async def test_nesting_within_the_limit_is_fine(gw: Gw) -> None:
    deep: Any = "x"
    for _ in range(MAX_DEPTH - 2):
        deep = {"d": deep}
    status, _, _ = await call(gw.client, "PUT", gw.session, gw.token, json={"extra": deep})
    assert status == 204


JSON_CT = {"Content-Type": "application/json"}


@pytest.mark.contract
async def test_oversized_bodies_are_413(gw: Gw) -> None:
    big = b'{"app_scope": "' + b"x" * (MAX_BODY + 10) + b'"}'
    status, body, headers = await call(gw.client, "POST", "/tokens", data=big, headers=JSON_CT)
    assert status == 413
    assert request_error(body) == (
        "SVC0002",
        f"Invalid input value for message part body (larger than {MAX_BODY} bytes)",
    )
    assert headers.get("Connection", "").lower() == "close"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        for _ in range(MAX_BODY // 8192 + 2):
            yield b"x" * 8192

    status, body, _ = await call(gw.client, "POST", "/tokens", data=chunks(), headers=JSON_CT)
    assert status == 413 and "larger than" in error_text(body)
    await gw.serving()


@pytest.mark.contract
@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"app_scope": NaN}', "NaN is not a JSON value"),
        (b'{"app_scope": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"app_scope": "\xff\xfe"}', "not valid JSON: not UTF-8"),
        (b'{"refresh_token": "\\ud800abcdefgh"}', "not valid Unicode"),
        (b'{"app_scope": "ACCOUNT_ID"', "not valid JSON"),
        (b"[1, 2]", "a JSON object is required"),
    ],
)
async def test_json_that_is_not_a_valid_object_is_400(gw: Gw, raw: bytes, says: str) -> None:
    status, body, _ = await call(gw.client, "POST", "/tokens", data=raw, headers=JSON_CT)
    assert status == 400, body
    mid, text = request_error(body)
    assert mid == "SVC0002" and "body" in text and says in text, text
    await gw.serving()


@pytest.mark.contract
async def test_unpaired_surrogates_never_reach_the_token_digest(gw: Gw) -> None:
    for method, body in (
        ("DELETE", {"token": "\ud800" * 10}),
        ("PUT", {"refresh_token": "\udfff" * 10}),
    ):
        data = json.dumps(body)  # ASCII escapes: \ud800
        status, answer, _ = await call(gw.client, method, "/tokens", data=data, headers=JSON_CT)
        assert (status, request_error(answer)[0]) == (400, "SVC0002"), answer
    e911 = (await new_token(gw.client, "E911"))["access_token"]
    status, answer, _ = await call(
        gw.client, "POST", "/e911ids", e911, data='{"token": "\\ud800x"}', headers=JSON_CT
    )
    assert (status, request_error(answer)[0]) == (400, "SVC0002"), answer
    await gw.serving()


@pytest.mark.contract
@pytest.mark.parametrize(
    ("content_type", "data", "status", "says"),
    [
        ("application/x-www-form-urlencoded", b"app_scope=ACCOUNT_ID", 415, "Content-Type"),
        ("multipart/form-data; boundary=x", b"--x--\r\n", 415, "Content-Type"),
        ("application/xml", b"<app_scope/>", 415, "application/json"),
        ("application/json; charset=no-such-codec", b"{}", 415, "unknown charset"),
    ],
)
async def test_bodies_that_are_not_json_are_refused_by_content_type(
    gw: Gw, content_type: str, data: bytes, status: int, says: str
) -> None:
    headers = {"Content-Type": content_type}
    got, body, _ = await call(gw.client, "POST", "/tokens", data=data, headers=headers)
    assert got == status, body
    mid, text = request_error(body)
    assert mid == "SVC0002" and "Content-Type" in text and says in text, text
    await gw.serving()


@pytest.mark.contract
async def test_json_sent_as_plain_text_or_without_a_type_is_accepted(gw: Gw) -> None:
    raw = b'{"app_scope": "ACCOUNT_ID"}'
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/ld+json"}):
        status, body, _ = await call(gw.client, "POST", "/tokens", data=raw, headers=headers)
        assert status == 200 and body["access_token"]
    request = (
        b"POST /tokens HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw)
    )
    status, _, body = parse_response(await raw_exchange(gw.port, request))
    assert status == 200 and body["access_token"]


@pytest.mark.contract
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", "/tokens", {"app_scope": 5}, ("SVC0003", "app_scope")),
        ("POST", "/tokens", {"app_scope": ["ACCOUNT_ID"]}, ("SVC0003", "app_scope")),
        ("POST", "/tokens", {"refresh_token": []}, ("SVC0002", "refresh_token")),
        ("PUT", "/tokens", {"refresh_token": {"a": 1}}, ("SVC0002", "refresh_token")),
        ("DELETE", "/tokens", {"token": 5}, ("SVC0002", "token")),
        ("DELETE", "/tokens", {"token": "abcdefgh", "token_type_hint": 5}, ("SVC0003", "hint")),
        ("POST", "{rtc}/sessions", {"session": "yes"}, ("SVC0002", "session")),
        ("PUT", "{session}", {"e911Association": 5}, ("SVC0002", "e911Association")),
        ("PUT", "{session}", {"e911Association": {"e911Id": 5}}, ("SVC0002", "e911Id")),
        ("POST", "{session}/calls", {"call": []}, ("SVC0002", "call")),
        ("POST", "{session}/calls", {"call": {"calledParty": 5}}, ("SVC0004", "calledParty")),
        (
            "POST",
            "{session}/calls",
            {"call": {"calledParty": "sip:bob@ivrbot.local", "sdp": 5}},
            ("SVC0002", "sdp"),
        ),
        ("POST", "{session}/conferences", {"conference": "x"}, ("SVC0002", "conference")),
        ("POST", "{session}/conferences", {"conference": {"sdp": []}}, ("SVC0002", "sdp")),
    ],
)
async def test_wrong_json_types_in_fields_are_400_naming_the_field(
    gw: Gw, method: str, path: str, body: dict[str, Any], expected: tuple[str, str]
) -> None:
    url = path.format(rtc=RTC, session=gw.session)
    status, answer, _ = await call(gw.client, method, url, gw.token, json=body)
    mid, text = request_error(answer)
    assert status == 400 and mid == expected[0] and expected[1] in text, (status, answer)
    await gw.serving()


@pytest.mark.contract
@pytest.mark.parametrize(
    ("extra_head", "body", "says"),
    [
        (b"Content-Encoding: gzip\r\n", b"not gzip at all", "body (unreadable"),
        (b"Content-Encoding: deflate\r\n", b"\x00\x01\x02", "decode content-encoding"),
        (b"Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n", "chunk size"),
        (b"Content-Length: 2\r\nContent-Length: 3\r\n", b"{}", "Content-Length"),
        (b"x-e911Id: \xff\xfe\xed\xa0\x80\r\n", b'{"session": {}}', "x-e911Id (the header"),
    ],
)
async def test_broken_encodings_and_headers_are_400(
    gw: Gw, extra_head: bytes, body: bytes, says: str
) -> None:
    length = b"" if b"Content-Length" in extra_head or b"chunked" in extra_head else None
    head = (
        b"POST /RTC/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer %s\r\nConnection: close\r\n" % gw.token.encode()
    ) + extra_head
    if length is None:
        head += b"Content-Length: %d\r\n" % len(body)
    status, _, answer = parse_response(await raw_exchange(gw.port, head + b"\r\n" + body))
    assert status == 400, answer
    mid, text = request_error(answer)
    assert mid == "SVC0002" and says in text, text
    await gw.serving()


# SDP --------------------------------------------------------------------------------------
async def aiortc_offer(audio_sections: int) -> str:
    pc = RTCPeerConnection()
    try:
        for _ in range(audio_sections):
            pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


@pytest.mark.e2e
async def test_offers_with_too_many_media_sections_are_400_naming_sdp(gw: Gw) -> None:
    await gw.user("bob")
    offer = await aiortc_offer(100)
    for path, body in (
        ("/calls", {"call": {"calledParty": "sip:bob@ivrbot.local", "sdp": offer}}),
        ("/conferences", {"conference": {"sdp": offer}}),
    ):
        status, answer, _ = await call(gw.client, "POST", gw.session + path, gw.token, json=body)
        assert status == 400, answer
        mid, text = request_error(answer)
        assert mid == "SVC0002"
        assert text.startswith("Invalid input value for message part sdp (")
        assert f"100 media sections (m= lines); at most {MAX_MEDIA_SECTIONS}" in text
    await gw.serving()


@pytest.mark.e2e
async def test_garbage_and_oversized_sdp_are_400_naming_sdp(gw: Gw) -> None:
    await gw.user("bob")
    good = await aiortc_offer(1)
    cases = {
        "hello": "must be a session description starting with 'v=0'",
        "v=0\r\ngarbage\r\n": "no audio section",
        good.replace("a=ice-ufrag", "a=candidate:xx yy\r\na=ice-ufrag"): "cannot be used: ",
        re.sub(r"a=rtpmap:(\d+) .*", r"a=rtpmap:\1 x", good): "cannot be used: ",
        good.replace("a=mid:0", "a=mid:0\r\na=ssrc:abc cname:x"): "cannot be used: ",
        good + "a=x:" + "y" * MAX_SDP_BYTES + "\r\n": f"larger than {MAX_SDP_BYTES} bytes",
        good.replace("s=-", "s=\x00"): "NUL",
    }
    for sdp, says in cases.items():
        body = {"call": {"calledParty": "sip:bob@ivrbot.local", "sdp": sdp}}
        status, answer, _ = await call(
            gw.client, "POST", gw.session + "/calls", gw.token, json=body
        )
        assert status == 400, (sdp[:40], answer)
        mid, text = request_error(answer)
        assert mid == "SVC0002" and text.startswith("Invalid input value for message part sdp ("), (
            text
        )
        assert says in text and not text.endswith(": )"), text
    await gw.serving()


@pytest.mark.e2e
async def test_an_answer_with_too_many_sections_is_400_and_the_call_still_rings(gw: Gw) -> None:
    bob_token, bob_session = await gw.user("bob")
    body = {"call": {"calledParty": "sip:bob@ivrbot.local", "sdp": await aiortc_offer(1)}}
    status, _, headers = await call(gw.client, "POST", gw.session + "/calls", gw.token, json=body)
    assert status == 201
    call_path = ""
    for _ in range(10):
        status, events, _ = await call(gw.client, "GET", bob_session + "/events", bob_token)
        match = re.search(r"/calls/([0-9a-f]+)", json.dumps(events)) if status == 200 else None
        if match and "invitation-received" in json.dumps(events):
            call_path = f"{bob_session}/calls/{match[1]}"
            break
    assert call_path
    answer = {"callsMediaModifications": {"sdp": await aiortc_offer(20)}}
    status, got, _ = await call(
        gw.client, "PUT", call_path, bob_token, {"x-calls-action": "call-answer"}, json=answer
    )
    assert status == 400 and "sdp (the SDP answer has 20 media sections" in error_text(got)
    status, _, _ = await call(gw.client, "DELETE", headers["Location"], gw.token)
    assert status == 204
    await gw.serving()


# Authorization ------------------------------------------------------------------------------
@pytest.mark.contract
@pytest.mark.parametrize(
    "value",
    [
        b"Bearer \xff\xfe\xc3\x28",
        b"Bearer \xe2\x82\xac\xe2\x82\xac",
        b"Bearer abc def",
        b"bearer " + b"\xc3\xa9" * 40,
    ],
)
async def test_malformed_authorization_is_401_like_any_bad_token(gw: Gw, value: bytes) -> None:
    for request in (
        b"POST /RTC/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 15\r\nConnection: close\r\nAuthorization: %s\r\n\r\n"
        b'{"session": {}}' % value,
        b"GET %s/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: %s\r\n\r\n"
        % (gw.session.encode(), value),
    ):
        status, _, body = parse_response(await raw_exchange(gw.port, request))
        assert status == 401, body
        assert request_error(body)[0] == "POL0001"
    await gw.serving()


@pytest.mark.contract
async def test_malformed_access_token_on_the_websocket_url_is_401(gw: Gw) -> None:
    request = (
        b"GET %s/websockets/w1?access_token=%%FF%%FEabc HTTP/1.1\r\nHost: x\r\n"
        b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" % gw.session.encode()
    )
    status, _, body = parse_response(await raw_exchange(gw.port, request))
    assert status == 401 and request_error(body)[0] == "POL0001"
    await gw.serving()


# malformed requests and secrets in the log ---------------------------------------------------
@pytest.mark.contract
@pytest.mark.parametrize(
    ("request_line", "says"),
    [
        (b"GET /RTC/v1/x?access_token=%s HTTP/1.1 garbage", "Bad status line"),
        (b"GET /x?access_token=%s\x01 HTTP/1.1", "Invalid char in url query"),
        (b"GET /x?access_token=%s&pad=" + b"a" * 9000 + b" HTTP/1.1", "Got more than"),
        (b"G\x00T /?code=%s HTTP/1.1", ""),
        (b"GET /config HTTP/1.1\r\nAuthorization: Bearer %s\x01", "Invalid header value char"),
    ],
)
async def test_a_malformed_request_line_is_400_json_and_its_token_stays_out_of_the_log(
    gw: Gw, caplog: pytest.LogCaptureFixture, request_line: bytes, says: str
) -> None:
    secret = gw.token.encode()
    raw = await raw_exchange(gw.port, request_line.replace(b"%s", secret) + b"\r\nHost: x\r\n\r\n")
    status, _, body = parse_response(raw)  # and the connection is closed: raw_exchange returned
    assert status == 400
    mid, text = request_error(body)
    assert mid == "SVC0002" and text.startswith("Invalid input value for message part request (")
    assert says in text and gw.token not in text
    assert gw.token not in caplog.text
    malformed = [r for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(malformed) == 1 and malformed[0].levelno == logging.INFO
    await gw.serving()


@pytest.mark.contract
async def test_the_access_log_redacts_tokens_in_the_websocket_url(
    gw: Gw, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{gw.session}/websockets/w1?access_token={gw.token}"
    async with gw.client.ws_connect(url) as ws:
        await ws.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    line = next(line for line in lines if "/websockets/w1" in line)
    assert "access_token=[redacted]" in line and " 101 " in line
    assert gw.token not in caplog.text


@pytest.mark.unit
def test_redaction_covers_headers_queries_and_json() -> None:
    token = "Jt3bJ1w-xyzABC_0123456789abcdefghijklmnopq"
    for text in (
        f"Authorization: Bearer {token}",
        f"GET /a?x=1&access_token={token}&y=2",
        f"grant_type=refresh_token&refresh_token={token}",
        f"code={token}&state=s",
        f"client_secret={token}",
        f'{{"access_token": "{token}", "scope": "WEBRTC"}}',
        f"{{'token': '{token}'}}",
        f"Basic {token}",
    ):
        assert token not in redact(text), text
    assert redact("GET /config?state=abc HTTP/1.1") == "GET /config?state=abc HTTP/1.1"


@pytest.mark.unit
def test_the_secret_watch_sees_a_leak() -> None:
    """The suite-wide check (tests/conftest.py) is not vacuous: a logged token is found."""
    log = logging.getLogger("ivrbot.test")
    with SecretWatch() as watch:
        watch.add("Zk7-secret-token-value")
        log.info("fine line")
        log.warning("oops %s", "Zk7-secret-token-value")
    assert len(watch.leaks()) == 1 and "Zk7-..." in watch.leaks()[0]


# disconnects and slow clients ---------------------------------------------------------------
@pytest.mark.contract
async def test_a_client_dropping_mid_body_is_one_info_line(
    gw: Gw, caplog: pytest.LogCaptureFixture
) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(
        b"POST /RTC/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Authorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n{"sess' % gw.token.encode()
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    for _ in range(50):
        if "went away" in caplog.text:
            break
        await asyncio.sleep(0.05)
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(gone) == 1 and gone[0].levelno == logging.INFO and not gone[0].exc_info
    await gw.serving()


async def drip(port: int, prefix: bytes, data: bytes, every: float) -> tuple[bytes, float]:
    """Send ``prefix``, then ``data`` one byte every ``every`` s; returns what the gateway
    sent before it closed the connection, and when (seconds after the first byte)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()

    async def send() -> None:
        writer.write(prefix)
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every)

    sender = asyncio.ensure_future(send())
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 30):
            received += chunk
    except (TimeoutError, ConnectionError):
        pass
    finally:
        elapsed = time.monotonic() - start
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()
    return received, elapsed


@pytest.mark.contract
async def test_a_slow_drip_request_head_is_cut_off(gw: Gw) -> None:
    head = b"GET /config HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 40 + b"\r\n\r\n"
    waiting = asyncio.ensure_future(drip(gw.port, b"", head, every=0.2))
    await asyncio.sleep(0.3)
    await gw.serving()  # others are served while one client drips
    received, elapsed = await waiting
    assert HEADER_TIMEOUT - 0.1 <= elapsed <= HEADER_TIMEOUT + SLACK
    status, headers, body = parse_response(received)
    assert status == 408 and headers["connection"] == "close"
    assert "headers not received within 1 s" in error_text(body)
    await gw.serving()


@pytest.mark.e2e
async def test_a_slow_drip_body_is_cut_off(gw: Gw) -> None:
    body = b'{"app_scope": "ACCOUNT_ID", "pad": "' + b"a" * 100 + b'"}'
    head = (
        b"POST /tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    received, elapsed = await drip(gw.port, head, body, every=0.2)
    assert BODY_TIMEOUT - 0.1 <= elapsed <= BODY_TIMEOUT + SLACK + 2.0  # + lingering
    status, headers, answer = parse_response(received)
    assert status == 408 and headers["connection"] == "close"
    assert request_error(answer) == (
        "SVC0002",
        "Invalid input value for message part body (not received within 1 s)",
    )
    await gw.serving()


@pytest.mark.e2e
async def test_idle_connections_are_closed_after_the_keepalive_timeout(gw: Gw) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    start = time.monotonic()
    try:
        assert await asyncio.wait_for(reader.read(), KEEPALIVE + SLACK) == b""
    finally:
        writer.close()
    assert KEEPALIVE - 0.1 <= time.monotonic() - start <= KEEPALIVE + SLACK
    # a kept-alive connection is reused within the timeout and closed after it
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        for _ in range(2):
            writer.write(b"GET /config HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(re.search(rb"Content-Length: (\d+)", head)[1])  # type: ignore[index]
            await reader.readexactly(length)
            await asyncio.sleep(0.3)
        start = time.monotonic()
        assert await asyncio.wait_for(reader.read(), KEEPALIVE + SLACK) == b""
        assert time.monotonic() - start <= KEEPALIVE + SLACK
    finally:
        writer.close()


@pytest.mark.e2e
async def test_the_event_channel_websocket_is_not_cut_by_the_head_timeout(gw: Gw) -> None:
    async with gw.client.ws_connect(
        f"{gw.session}/websockets/w1", headers={"Authorization": f"Bearer {gw.token}"}
    ) as ws:
        await asyncio.sleep(HEADER_TIMEOUT + 0.5)
        await ws.send_str("ping")  # client frames arrive after the head deadline would have
        await asyncio.sleep(HEADER_TIMEOUT + 0.5)
        assert not ws.closed
    await gw.serving()

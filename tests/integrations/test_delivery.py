"""The webhook sender's logic on fakes: signatures, backoff, retries, order per call.

The receiver here is a fake poster (no network) and the waits are recorded, not slept: the
HTTP path and the timing over real sockets are in test_calls_api.py."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging

import aiohttp
import pytest
from prometheus_client import REGISTRY

from ivrbot.integrations.delivery import WebhookSender, backoff_delays, shown_url
from ivrbot.integrations.signing import signature, url_problem, verify

pytestmark = pytest.mark.unit

SECRET = "whsec-test-0123456789"


class FakeReceiver:
    """Answers each POST with the next of ``answers`` (an int status, or an exception to
    raise), then 200; keeps what it got."""

    def __init__(self, *answers: int | BaseException) -> None:
        self.answers = list(answers)
        self.got: list[tuple[str, dict[str, str], bytes]] = []

    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        self.got.append((url, headers, body))
        await asyncio.sleep(0)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def types(self) -> list[str]:
        return [json.loads(body)["type"] for _, _, body in self.got]


class VirtualSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def sender(receiver: FakeReceiver, sleep: VirtualSleep, tries: int = 4) -> WebhookSender:
    return WebhookSender(SECRET, tries, 1.0, 5.0, post=receiver.post, sleep=sleep,
                         clock=lambda: 1_800_000_000.0)  # fmt: skip


def counter(name: str, event: str) -> float:
    return REGISTRY.get_sample_value(name, {"event": event}) or 0.0


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"type":"call.completed"}'
    expected = hmac.new(SECRET.encode(), b"1800000000." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, 1_800_000_000, body) == f"v1={expected}"
    assert verify(SECRET, body, "1800000000", f"v1={expected}", now=1_800_000_100)
    assert not verify(SECRET, body + b" ", "1800000000", f"v1={expected}", now=1_800_000_100)
    assert not verify("other-secret", body, "1800000000", f"v1={expected}", now=1_800_000_100)
    # a replay, ten minutes later, is refused though its signature is right
    assert not verify(SECRET, body, "1800000000", f"v1={expected}", now=1_800_000_600)


def test_backoff_doubles() -> None:
    assert backoff_delays(5, 1.0) == [1.0, 2.0, 4.0, 8.0]
    assert backoff_delays(1, 1.0) == []


def test_urls_are_checked_and_shown_without_secrets() -> None:
    assert url_problem("https://example.com/hook") == ""
    assert "http:// or https://" in url_problem("ftp://example.com/hook")
    assert "http:// or https://" in url_problem("example.com/hook")
    assert url_problem("http://host:port/x") == "'http://host:port/x' is not a URL"
    assert shown_url("https://u:pw@example.com:8443/h?token=abc") == "https://example.com:8443/h"


async def test_a_delivery_is_signed_and_retried_on_5xx_and_connection_errors() -> None:
    receiver = FakeReceiver(500, aiohttp.ClientConnectionError("refused"), TimeoutError(), 200)
    sleep = VirtualSleep()
    out = sender(receiver, sleep)
    before = counter("ivrbot_webhooks_delivered_total", "call.answered")
    out.send("http://127.0.0.1:9/hook", "call:a", {"type": "call.answered", "n": 1})
    await out.idle()
    assert len(receiver.got) == 4  # 500, refused, timed out, then taken
    assert sleep.waits == [1.0, 2.0, 4.0]
    url, headers, body = receiver.got[-1]
    assert url == "http://127.0.0.1:9/hook"
    assert headers["X-Ivrbot-Timestamp"] == "1800000000"
    assert headers["X-Ivrbot-Event"] == "call.answered"
    mac = hmac.new(SECRET.encode(), b"1800000000." + body, hashlib.sha256).hexdigest()
    assert headers["X-Ivrbot-Signature"] == "v1=" + mac
    assert {h["X-Ivrbot-Signature"] for _, h, _ in receiver.got} == {"v1=" + mac}  # same event
    assert out.status()["delivered"] == 1 and out.status()["failed"] == 0
    assert out.status()["retried"] == 3
    assert counter("ivrbot_webhooks_delivered_total", "call.answered") == before + 1


async def test_a_4xx_is_not_retried_and_a_failure_is_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "ivrbot.integrations")
    receiver = FakeReceiver(404)
    sleep = VirtualSleep()
    out = sender(receiver, sleep)
    failed = counter("ivrbot_webhooks_failed_total", "call.step")
    out.send("http://127.0.0.1:9/hook?token=secret", "call:b", {"type": "call.step"})
    await out.idle()
    assert len(receiver.got) == 1 and sleep.waits == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["webhook call.step to http://127.0.0.1:9/hook failed: HTTP 404 after 1 try"]
    assert counter("ivrbot_webhooks_failed_total", "call.step") == failed + 1
    [failure] = out.status()["failures"]
    assert failure["url"] == "http://127.0.0.1:9/hook" and failure["problem"] == "HTTP 404"


async def test_out_of_tries_is_one_warning_naming_the_last_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = FakeReceiver(503, 503, 503, 503, 503)
    sleep = VirtualSleep()
    out = sender(receiver, sleep, tries=3)
    out.send("http://127.0.0.1:9/hook", "call:c", {"type": "call.completed"})
    await out.idle()
    assert len(receiver.got) == 3 and sleep.waits == [1.0, 2.0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "webhook call.completed to http://127.0.0.1:9/hook failed: HTTP 503 after 3 tries"
    ]


async def test_one_calls_events_keep_their_order_while_another_call_goes_on() -> None:
    """Call a's first event is retried: its second waits for it; call b's goes out at once."""
    receiver = FakeReceiver(500)
    release = asyncio.Event()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await release.wait()

    out = WebhookSender(SECRET, 3, 1.0, 5.0, post=receiver.post, sleep=sleep)
    out.send("http://x/hook", "call:a", {"type": "call.initiated", "call": "a"})
    out.send("http://x/hook", "call:a", {"type": "call.answered", "call": "a"})
    out.send("http://x/hook", "call:b", {"type": "call.initiated", "call": "b"})
    for _ in range(10):
        await asyncio.sleep(0)
    sent = [(json.loads(b)["call"], json.loads(b)["type"]) for _, _, b in receiver.got]
    assert sent == [("a", "call.initiated"), ("b", "call.initiated")]  # a waits for its retry
    release.set()
    await out.idle()
    sent = [(json.loads(b)["call"], json.loads(b)["type"]) for _, _, b in receiver.got]
    assert [s for s in sent if s[0] == "a"] == [
        ("a", "call.initiated"), ("a", "call.initiated"), ("a", "call.answered"),
    ]  # fmt: skip


async def test_without_a_secret_events_go_unsigned_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = FakeReceiver()
    out = WebhookSender("", post=receiver.post, sleep=VirtualSleep())
    out.send("http://x/hook", "k", {"type": "call.step"})
    out.send("http://x/hook", "k", {"type": "call.step"})
    await out.idle()
    assert all("X-Ivrbot-Signature" not in h for _, h, _ in receiver.got)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["webhooks are sent unsigned: set IVRBOT_WEBHOOK_SECRET"]

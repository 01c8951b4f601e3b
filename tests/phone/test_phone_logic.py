"""The Phone's own logic over a scripted transport (unit tests: no gateway, no media).

What goes on the wire for each method, and how each gateway answer reaches the application
(events and errors), as docs/spec/phone-api.md says."""

from __future__ import annotations

from typing import Any

import pytest

from ivrbot.errors import PhoneException
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport import GatewayUnreachable, Response
from tests.phone.fake_transport import FakeTransport

pytestmark = pytest.mark.unit

SESSIONS = ("POST", "/RTC/v1/sessions")
CREATED = Response(201, {"Location": "/RTC/v1/sessions/s1", "x-expires": "0"}, None)


def recorder(phone: Phone, *names: str) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    for name in names:
        phone.on(name, lambda payload, name=name: seen.append((name, payload)))
    return seen


async def test_login_sends_the_token_and_opens_the_session() -> None:
    transport = FakeTransport({SESSIONS: CREATED})
    phone = Phone("http://gateway.invalid", transport=transport)
    seen = recorder(phone, "session:ready")
    await phone.login(token="tok-1")
    assert transport.token == "tok-1"
    method, path, body, _ = transport.sent[0]
    assert (method, path) == SESSIONS
    assert body["session"]["mediaType"] == "dtls-srtp"
    assert phone.session_id == "s1"
    assert [name for name, _ in seen] == ["session:ready"]
    transport.answers[("DELETE", "/RTC/v1/sessions/s1")] = Response(204, {}, None)
    await phone.logout()
    assert transport.sent[-1][:2] == ("DELETE", "/RTC/v1/sessions/s1")
    assert transport.closed and not phone.logged_in


async def test_a_refused_login_is_an_error_event_with_the_gateway_s_reason() -> None:
    refused = Response(
        401,
        {},
        {"RequestError": {"PolicyException": {"MessageId": "POL1000", "Text": "bad token"}}},
    )
    phone = Phone("http://gateway.invalid", transport=FakeTransport({SESSIONS: refused}))
    seen = recorder(phone, "error", "session:ready")
    with pytest.raises(PhoneException):
        await phone.login(token="stale")
    assert [name for name, _ in seen] == ["error"]
    error = seen[0][1].to_dict()
    assert error["JSMethod"] == "login" and error["HttpStatusCode"] == 401
    assert "bad token" in error["APIError"]
    assert not phone.logged_in


async def test_an_unreachable_gateway_is_told_as_such_not_as_an_error() -> None:
    phone = Phone("http://gateway.invalid", transport=FakeTransport({SESSIONS: GatewayUnreachable}))
    seen = recorder(phone, "error", "gateway:unreachable")
    with pytest.raises(PhoneException):
        await phone.login(token="tok")
    assert "gateway:unreachable" in [name for name, _ in seen]
    assert "error" not in [name for name, _ in seen]


async def test_mistakes_are_caught_before_anything_is_sent() -> None:
    transport = FakeTransport({})
    phone = Phone("http://gateway.invalid", transport=transport)
    with pytest.raises(PhoneException) as no_token:
        await phone.login(token="")
    with pytest.raises(PhoneException) as not_in:
        await phone.logout()
    assert no_token.value.error.error_code == "2002"
    assert not_in.value.error.error_code == "2101"
    assert transport.sent == []

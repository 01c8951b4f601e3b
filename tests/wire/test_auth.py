"""Gateway security over real HTTP: tokens, scopes, OAuth and consent, user ids, sessions,
rate limits, restarts and what reaches the database."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiortc import RTCPeerConnection

from ivrbot.errors import api_error_code
from ivrbot.wire.auth import digest
from ivrbot.wire.oauth import redirect_allowed
from ivrbot.wire.ratelimit import RateLimited, RateLimiter
from tests.wire.wire import (
    RTC,
    basic_auth,
    call,
    consent_code,
    db_bytes,
    dev_code,
    error_text,
    login,
    message_id,
    new_token,
    page_value,
    running,
)


# /config and tokens ----------------------------------------------------------------------
@pytest.mark.contract
async def test_config_is_public_and_has_no_secret(gwc: Any) -> None:
    server, client = gwc
    status, body, _ = await call(client, "GET", "/config")
    assert status == 200
    assert body["authorize_uri"] == "/oauth/v4/authorize"
    assert body["app_tokens_url"] == "/tokens" and body["app_e911ids_url"] == "/e911ids"
    assert body["virtual_numbers_pool"][0] == "5550001000"
    raw = str(body)
    assert server.settings.client_secret not in raw
    assert server.settings.client_id not in raw
    assert "secret" not in raw.lower()
    assert server.settings.client_secret not in repr(server.settings)


@pytest.mark.contract
@pytest.mark.parametrize(
    ("app_scope", "scope"),
    [
        ("VIRTUAL_NUMBER", "WEBRTC,EMERGENCYSERVICES"),
        ("ACCOUNT_ID", "WEBRTC"),
        ("E911", "EMERGENCYSERVICES"),
    ],
)
async def test_client_credentials_scopes(gwc: Any, app_scope: str, scope: str) -> None:
    _, client = gwc
    body = await new_token(client, app_scope)
    assert body["scope"] == scope
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"] != body["refresh_token"]
    assert len(body["access_token"]) >= 40


@pytest.mark.contract
async def test_token_request_errors_name_the_field(gwc: Any) -> None:
    _, client = gwc
    status, body, _ = await call(client, "POST", "/tokens", json={"app_scope": "NOPE"})
    assert (status, message_id(body)) == (400, "SVC0003")
    assert "app_scope" in error_text(body) and "VIRTUAL_NUMBER" in error_text(body)
    status, body, _ = await call(client, "POST", "/tokens", json={"app_scope": 7})
    assert (status, message_id(body)) == (400, "SVC0003")
    status, body, _ = await call(client, "POST", "/tokens", json={"app_scope": "MOBILE_NUMBER"})
    assert (status, message_id(body)) == (400, "SVC0002")
    assert "auth_code" in error_text(body)
    status, body, _ = await call(
        client, "POST", "/tokens", json={"app_scope": "MOBILE_NUMBER", "auth_code": "forged"}
    )
    assert (status, message_id(body)) == (401, "POL0001")
    status, body, _ = await call(client, "POST", "/tokens", data=b"{not json")
    assert (status, message_id(body)) == (400, "SVC0002")
    assert "not valid JSON" in error_text(body)
    status, body, _ = await call(client, "POST", "/tokens", json=["app_scope"])
    assert (status, message_id(body)) == (400, "SVC0002")
    assert "JSON object" in error_text(body)
    status, body, _ = await call(client, "POST", "/tokens", json={"refresh_token": 5})
    assert (status, message_id(body)) == (400, "SVC0002")
    assert "refresh_token" in error_text(body)


@pytest.mark.contract
async def test_oversized_body_is_refused_with_clear_text(gwc: Any) -> None:
    _, client = gwc
    big = b'{"app_scope": "' + b"x" * (300 * 1024) + b'"}'
    status, body, _ = await call(
        client, "POST", "/tokens", data=big, headers={"Content-Type": "application/json"}
    )
    assert status in (400, 413)
    assert "larger than" in error_text(body)


# bearer tokens and scopes ----------------------------------------------------------------
@pytest.mark.contract
async def test_missing_unknown_and_wrong_scope_tokens(gwc: Any) -> None:
    _, client = gwc
    session = {"session": {"mediaType": "dtls-srtp"}}
    status, body, _ = await call(client, "POST", f"{RTC}/sessions", json=session)
    assert (status, message_id(body)) == (401, "POL0001")
    assert "missing bearer token" in error_text(body)
    status, body, _ = await call(client, "POST", f"{RTC}/sessions", "made-up", json=session)
    assert (status, message_id(body)) == (401, "POL0001")
    assert "unknown access token" in error_text(body)
    e911 = (await new_token(client, "E911"))["access_token"]
    status, body, _ = await call(client, "POST", f"{RTC}/sessions", e911, json=session)
    assert (status, message_id(body)) == (403, "POL1009")
    assert "WEBRTC" in error_text(body)
    assert api_error_code(status, message_id(body)) == "1809"
    status, body, _ = await call(client, "PUT", f"{RTC}/userIds/vtn:5550001000", e911)
    assert (status, message_id(body)) == (403, "POL1009")


@pytest.mark.contract
async def test_session_needs_a_user_id(gwc: Any) -> None:
    _, client = gwc
    access = (await new_token(client, "VIRTUAL_NUMBER"))["access_token"]
    status, body, _ = await login(client, access)
    assert (status, message_id(body)) == (400, "SVC8512")
    assert api_error_code(status, message_id(body)) == "1521"
    status, body, headers = await login(client, access, "vtn:5550001000")
    assert status == 201, body
    assert headers["Location"].startswith("/RTC/v1/sessions/")
    assert headers["x-expires"] == "3600"


@pytest.mark.contract
async def test_token_expiry(tmp_path: Path) -> None:
    async with running(tmp_path / "g.db", token_ttl_s=1) as (_, client):
        body = await new_token(client, "ACCOUNT_ID")
        assert body["expires_in"] == 1
        access = body["access_token"]
        status, _, _ = await call(client, "PUT", f"{RTC}/userIds/ann@ivrbot.local", access)
        assert status == 204
        await asyncio.sleep(1.1)
        status, body, _ = await call(client, "PUT", f"{RTC}/userIds/ann@ivrbot.local", access)
        assert (status, message_id(body)) == (401, "POL0001")
        assert "expired" in error_text(body)
        assert api_error_code(status, message_id(body)) == "1711"


@pytest.mark.contract
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_refresh_rotates_the_pair(gwc: Any, method: str) -> None:
    server, client = gwc
    first = await new_token(client, "VIRTUAL_NUMBER")
    status, _, headers = await login(client, first["access_token"], "vtn:5550001001")
    assert status == 201
    sid_path = headers["Location"]
    status, second, _ = await call(
        client, method, "/tokens", json={"refresh_token": first["refresh_token"]}
    )
    assert status == 200, second
    assert second["scope"] == "WEBRTC,EMERGENCYSERVICES"
    assert second["access_token"] != first["access_token"]
    # the old access token is rejected, the old refresh token cannot be used again
    status, body, _ = await call(client, "PUT", sid_path, first["access_token"])
    assert (status, message_id(body)) == (401, "POL0001")
    assert "revoked" in error_text(body)
    status, body, _ = await call(
        client, method, "/tokens", json={"refresh_token": first["refresh_token"]}
    )
    assert (status, message_id(body)) == (401, "POL0001")
    # the new token keeps the user id and owns the session made with the old one
    status, _, _ = await call(client, "PUT", sid_path, second["access_token"])
    assert status == 204
    status, _, _ = await login(client, second["access_token"])
    assert status == 201
    assert len(server.gateway.sessions) == 2


@pytest.mark.contract
async def test_revoke(gwc: Any) -> None:
    _, client = gwc
    pair = await new_token(client, "ACCOUNT_ID")
    status, _, _ = await call(client, "DELETE", "/tokens", json={"token": pair["access_token"]})
    assert status == 204
    status, body, _ = await call(
        client, "PUT", f"{RTC}/userIds/x@ivrbot.local", pair["access_token"]
    )
    assert (status, message_id(body)) == (401, "POL0001")
    assert "revoked" in error_text(body)
    status, body, _ = await call(
        client, "POST", "/tokens", json={"refresh_token": pair["refresh_token"]}
    )
    assert (status, message_id(body)) == (401, "POL0001")
    # revoking by refresh token, with a hint; unknown tokens are fine (RFC 7009)
    pair = await new_token(client, "ACCOUNT_ID")
    status, _, _ = await call(
        client,
        "DELETE",
        "/tokens",
        json={"token": pair["refresh_token"], "token_type_hint": "refresh_token"},
    )
    assert status == 204
    status, _, _ = await call(client, "PUT", f"{RTC}/userIds/x@ivrbot.local", pair["access_token"])
    assert status == 401
    status, _, _ = await call(client, "DELETE", "/tokens", json={"token": "never-issued"})
    assert status == 204
    status, body, _ = await call(client, "DELETE", "/tokens", json={})
    assert (status, message_id(body)) == (400, "SVC0002")
    status, body, _ = await call(
        client, "DELETE", "/tokens", json={"token": "x", "token_type_hint": "id_token"}
    )
    assert (status, message_id(body)) == (400, "SVC0003")


# user ids --------------------------------------------------------------------------------
@pytest.mark.contract
async def test_user_ids(gwc: Any) -> None:
    server, client = gwc
    vtn = (await new_token(client, "VIRTUAL_NUMBER"))["access_token"]
    acc = (await new_token(client, "ACCOUNT_ID"))["access_token"]
    cases = [
        (vtn, "vtn:5550001002", 204, None),
        (vtn, "vtn:15550001003", 204, None),  # leading 1 stripped
        (vtn, "vtn:5559999999", 404, "SVC8514"),  # not in the pool
        (vtn, "vtn:555", 400, "SVC0003"),
        (vtn, "5550001002", 400, "SVC0003"),
        (vtn, "bob@ivrbot.local", 400, "SVC0003"),
        (acc, "bob@ivrbot.local", 204, None),
        (acc, "bob@elsewhere.example", 404, "SVC8514"),
        (acc, "bob", 400, "SVC0003"),
        (acc, "@ivrbot.local", 400, "SVC0003"),
        (acc, "a@b@ivrbot.local", 400, "SVC0003"),
    ]
    for token, user_id, want, want_id in cases:
        status, body, _ = await call(client, "PUT", f"{RTC}/userIds/{user_id}", token)
        assert status == want, (user_id, body)
        if want_id:
            assert message_id(body) == want_id, user_id
    status, body, _ = await call(client, "PUT", f"{RTC}/userIds/vtn:5559999999", vtn)
    assert api_error_code(status, message_id(body)) == "1541"
    store = server.gateway.store
    assert (await store.get_identity("vtn:5550001003")).kind == "virtual"  # type: ignore[union-attr]
    assert (await store.get_identity("bob@ivrbot.local")).kind == "account"  # type: ignore[union-attr]
    assert await store.get_identity("vtn:5559999999") is None
    # the last association wins: the session is bob's
    status, _, headers = await login(client, acc)
    assert status == 201
    sid = headers["Location"].rsplit("/", 1)[1]
    assert server.gateway.sessions.get(sid).user_id == "bob@ivrbot.local"  # type: ignore[union-attr]


# the consent flow ------------------------------------------------------------------------
@asynccontextmanager
async def redirect_target() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A developer's app page that receives the redirect (code and state)."""
    seen: list[dict[str, str]] = []

    async def callback(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        return web.Response(text="consent received")

    app = web.Application()
    app.router.add_get("/cb", callback)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/cb", seen
    finally:
        await runner.cleanup()


@pytest.mark.contract
async def test_consent_flow_end_to_end(gwc: Any) -> None:
    server, client = gwc
    async with redirect_target() as (redirect, seen):
        query = {"redirect_uri": redirect, "state": "xyz<>", "scope": "WEBRTCMOBILE"}
        status, page, headers = await call(client, "GET", "/oauth/v4/authorize", params=query)
        assert status == 200
        assert headers["Content-Type"].startswith("text/html")
        assert 'name="mobile_number"' in page and 'type="tel"' in page
        assert "xyz&lt;&gt;" in page and "xyz<>" not in page  # escaped
        assert headers["X-Frame-Options"] == "DENY"
        form = {
            "client_id": server.settings.client_id,
            "redirect_uri": redirect,
            "scope": "WEBRTCMOBILE",
            "state": "xyz<>",
            "mobile_number": "12345",
            "decision": "allow",
        }
        status, page, _ = await call(client, "POST", "/oauth/v4/authorize", data=form)
        assert status == 400 and "10 digits" in page
        form["mobile_number"] = "+1 (425) 555-0100"
        status, page, _ = await call(client, "POST", "/oauth/v4/authorize", data=form)
        assert status == 200 and 'name="otp"' in page  # a code was sent: prove the number
        assert server.gateway.verifications.verifier.sent[-1] == ("4255550100", dev_code(page))
        form.update(verification=page_value(page, "verification"), otp=dev_code(page))
        status, page, _ = await call(client, "POST", "/oauth/v4/authorize", data=form)
        assert (status, page) == (200, "consent received")  # the client followed the redirect
        assert seen[-1]["state"] == "xyz<>"
        code = seen[-1]["code"]

    status, body, _ = await call(
        client, "POST", "/tokens", json={"app_scope": "MOBILE_NUMBER", "auth_code": code}
    )
    assert status == 200, body
    assert body["scope"] == "WEBRTCMOBILE,EMERGENCYSERVICES"
    access = body["access_token"]
    status, _, headers = await login(client, access)  # no PUT /userIds needed
    assert status == 201
    sid = headers["Location"].rsplit("/", 1)[1]
    assert server.gateway.sessions.get(sid).user_id == "4255550100"  # type: ignore[union-attr]
    identity = await server.gateway.store.get_identity("4255550100")
    assert identity is not None and identity.kind == "mobile"
    # PUT /userIds with its own number is a no-op; another number is not this token's
    status, _, _ = await call(client, "PUT", f"{RTC}/userIds/4255550100", access)
    assert status == 204
    status, body, _ = await call(client, "PUT", f"{RTC}/userIds/4255550199", access)
    assert (status, message_id(body)) == (404, "SVC8514")
    # the code works once
    status, body, _ = await call(
        client, "POST", "/tokens", json={"app_scope": "MOBILE_NUMBER", "auth_code": code}
    )
    assert (status, message_id(body)) == (401, "POL0001")


@pytest.mark.contract
async def test_consent_page_refuses_bad_requests(gwc: Any) -> None:
    _, client = gwc
    bad = [
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": "http://localhost.evil.example/cb"},
        {"redirect_uri": "http://127.0.0.1:8/cb#frag"},
        {},
        {"redirect_uri": "http://127.0.0.1/cb", "client_id": "someone-else"},
        {"redirect_uri": "http://127.0.0.1/cb", "scope": "WEBRTC"},
        {"redirect_uri": "http://127.0.0.1/cb", "response_type": "token"},
    ]
    for query in bad:
        async with client.get("/oauth/v4/authorize", params=query, allow_redirects=False) as r:
            assert r.status == 400, query
            assert "Location" not in r.headers
            assert "Cannot authorize" in await r.text()
    form = {"redirect_uri": "https://evil.example/cb", "mobile_number": "4255550100"}
    async with client.post("/oauth/v4/authorize", data=form, allow_redirects=False) as r:
        assert r.status == 400 and "Location" not in r.headers
    form = {"redirect_uri": "http://localhost:5/cb?x=1", "state": "s", "decision": "deny"}
    async with client.post("/oauth/v4/authorize", data=form, allow_redirects=False) as r:
        assert r.status == 302
        location = r.headers["Location"]
        assert location.startswith("http://localhost:5/cb?")
        assert "x=1" in location and "error=access_denied" in location and "state=s" in location


# the OAuth token endpoint ----------------------------------------------------------------
@pytest.mark.contract
async def test_oauth_token_endpoint(gwc: Any) -> None:
    server, client = gwc
    s = server.settings
    basic = basic_auth(s.client_id, s.client_secret)
    form = {"grant_type": "client_credentials", "scope": "WEBRTC,EMERGENCYSERVICES"}
    async with client.post("/oauth/v4/token", data=form, headers=basic) as r:
        assert r.status == 200
        assert r.headers["Cache-Control"] == "no-store"
        pair = await r.json()
    assert pair["scope"] == "WEBRTC,EMERGENCYSERVICES"
    in_body = {**form, "client_id": s.client_id, "client_secret": s.client_secret}
    in_body["scope"] = "ACCOUNT_ID"
    async with client.post("/oauth/v4/token", data=in_body) as r:
        assert r.status == 200 and (await r.json())["scope"] == "WEBRTC"

    async def oauth(data: dict[str, str], auth: Any = basic) -> tuple[int, dict[str, Any]]:
        async with client.post("/oauth/v4/token", data=data, headers=auth) as r:
            return r.status, await r.json()

    status, err = await oauth(form, basic_auth(s.client_id, "wrong"))
    assert (status, err["error"]) == (401, "invalid_client")
    status, err = await oauth({**form, "client_id": s.client_id}, None)
    assert (status, err["error"]) == (401, "invalid_client")
    status, err = await oauth({"grant_type": "password"})
    assert (status, err["error"]) == (400, "unsupported_grant_type")
    status, err = await oauth({"grant_type": "client_credentials", "scope": "EVERYTHING"})
    assert (status, err["error"]) == (400, "invalid_scope")
    status, err = await oauth({"grant_type": "client_credentials", "scope": "WEBRTCMOBILE"})
    assert (status, err["error"]) == (400, "invalid_scope")
    status, err = await oauth({"grant_type": "authorization_code"})
    assert (status, err["error"]) == (400, "invalid_request")
    # authorization_code: redirect_uri must match the consent request
    code = await consent_code(client, "4255550101", "http://127.0.0.1:1/cb")
    grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://x/"}
    status, err = await oauth(grant)
    assert (status, err["error"]) == (400, "invalid_grant")
    code = await consent_code(client, "4255550101", "http://127.0.0.1:1/cb", field="msisdn")
    grant["code"], grant["redirect_uri"] = code, "http://127.0.0.1:1/cb"
    status, mobile = await oauth(grant)
    assert status == 200 and mobile["scope"] == "WEBRTCMOBILE,EMERGENCYSERVICES"
    # refresh, then revoke
    status, fresh = await oauth(
        {"grant_type": "refresh_token", "refresh_token": mobile["refresh_token"]}
    )
    assert status == 200 and fresh["scope"] == mobile["scope"]
    status, _, _ = await login(client, mobile["access_token"])
    assert status == 401
    status, _, _ = await login(client, fresh["access_token"])
    assert status == 201
    async with client.post(
        "/oauth/v4/revoke", data={"token": fresh["access_token"]}, headers=basic
    ) as r:
        assert r.status == 200
    status, _, _ = await login(client, fresh["access_token"])
    assert status == 401
    async with client.post("/oauth/v4/revoke", data={"token": "x"}) as r:
        assert r.status == 401


# rate limits -----------------------------------------------------------------------------
@pytest.mark.contract
async def test_rate_limit_then_recovery(tmp_path: Path) -> None:
    async with running(tmp_path / "g.db", rate_limit=2.0, rate_burst=3) as (_, client):
        for _ in range(3):
            await new_token(client, "ACCOUNT_ID")
        status, body, headers = await call(
            client, "POST", "/tokens", json={"app_scope": "ACCOUNT_ID"}
        )
        assert (status, message_id(body)) == (429, "POL0001")
        assert "PolicyException" in body["RequestError"]
        assert "rate limit" in error_text(body)
        assert int(headers["Retry-After"]) >= 1
        await asyncio.sleep(int(headers["Retry-After"]))
        await new_token(client, "ACCOUNT_ID")
        # the OAuth endpoint has its own bucket
        form = {"grant_type": "client_credentials", "scope": "WEBRTC"}
        statuses = []
        for _ in range(5):
            async with client.post("/oauth/v4/token", data=form) as r:
                statuses.append(r.status)
        assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]


@pytest.mark.contract
async def test_session_creation_is_rate_limited(tmp_path: Path) -> None:
    async with running(tmp_path / "g.db", rate_limit=1.0, rate_burst=2) as (_, client):
        access = (await new_token(client, "ACCOUNT_ID"))["access_token"]
        assert (await login(client, access, "a@ivrbot.local"))[0] == 201
        assert (await login(client, access))[0] == 201
        status, body, headers = await login(client, access)
        assert (status, message_id(body)) == (429, "POL0001")
        await asyncio.sleep(float(headers["Retry-After"]))
        assert (await login(client, access))[0] == 201


@pytest.mark.contract
async def test_rate_limit_can_be_disabled(tmp_path: Path) -> None:
    async with running(tmp_path / "g.db", rate_limit=0, rate_burst=1) as (_, client):
        for _ in range(40):
            await new_token(client, "E911")


# sessions --------------------------------------------------------------------------------
@pytest.mark.e2e
async def test_session_expiry(tmp_path: Path) -> None:
    async with running(tmp_path / "g.db", session_ttl_s=1) as (server, client):
        access = (await new_token(client, "ACCOUNT_ID"))["access_token"]
        status, _, headers = await login(client, access, "eve@ivrbot.local")
        assert status == 201 and headers["x-expires"] == "1"
        path = headers["Location"]
        # refreshing keeps it alive past its first expiry
        for _ in range(3):
            await asyncio.sleep(0.5)
            status, _, headers = await call(client, "PUT", path, access)
            assert status == 204 and headers["x-expires"] == "1"
        await asyncio.sleep(1.6)
        status, body, _ = await call(client, "PUT", path, access)
        assert (status, message_id(body)) == (404, "SVC8514")
        assert len(server.gateway.sessions) == 0  # removed by the expiry task
        status, _, _ = await call(client, "GET", path + "/events", access)
        assert status == 404


# restarts and what is stored -------------------------------------------------------------
async def _offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


@pytest.mark.e2e
async def test_restart_keeps_tokens_identities_e911_and_call_records(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    async with running(db) as (server, client):
        vtn = await new_token(client, "VIRTUAL_NUMBER")
        status, _, _ = await call(
            client, "PUT", f"{RTC}/userIds/vtn:5550001010", vtn["access_token"]
        )
        assert status == 204
        address = {
            "first_name": "Ann",
            "last_name": "Lee",
            "house_number": "12",
            "street": "Main St",
            "city": "Seattle",
            "state": "WA",
            "zip": "98101",
        }
        status, e911, _ = await call(
            client,
            "POST",
            "/e911ids",
            json={"token": vtn["access_token"], "address": address, "is_confirmed": True},
        )
        assert status == 200, e911
        e911_id = e911["e911Locations"]["addressIdentifier"]
        status, _, headers = await login(client, vtn["access_token"], e911_id=e911_id)
        assert status == 201
        # a real call to nobody: it ends at once, and the switch reports it
        pc, sdp = await _offer()
        try:
            status, body, call_headers = await call(
                client,
                "POST",
                headers["Location"] + "/calls",
                vtn["access_token"],
                json={"call": {"calledParty": "tel:+15550001099", "sdp": sdp}},
            )
            assert status == 201, body
            call_id = call_headers["Location"].rsplit("/", 1)[1]
            async with asyncio.timeout(10):  # the record is written at the start, then ended
                while not [r for r in await server.gateway.store.recent_calls() if r.ended_at]:
                    await asyncio.sleep(0.05)
        finally:
            await pc.close()
        (record,) = await server.gateway.store.recent_calls()
        assert record.from_uri == "tel:+15550001010" and record.to_uri == "tel:+15550001099"
        assert record.answered_at is None and record.duration == 0.0
        assert record.ended_at is not None and record.ended_at >= record.started_at
        assert record.reason
        assert call_id  # the caller's call id is its leg's, the record is the call's
        acc = await new_token(client, "ACCOUNT_ID")
        status, _, _ = await call(
            client, "PUT", f"{RTC}/userIds/ann@ivrbot.local", acc["access_token"]
        )
        assert status == 204

    async with running(db) as (server, client):
        # the old access token still works, still bound to its user id
        status, _, headers = await login(client, vtn["access_token"], e911_id=e911_id)
        assert status == 201
        sid = headers["Location"].rsplit("/", 1)[1]
        session = server.gateway.sessions.get(sid)
        assert session is not None and session.user_id == "vtn:5550001010"
        assert session.e911_id == e911_id
        store = server.gateway.store
        assert (await store.get_identity("vtn:5550001010")).kind == "virtual"  # type: ignore[union-attr]
        assert (await store.get_identity("ann@ivrbot.local")).kind == "account"  # type: ignore[union-attr]
        assert (await store.get_call(record.id)) == record
        # refresh tokens survive too
        status, body, _ = await call(
            client, "PUT", "/tokens", json={"refresh_token": acc["refresh_token"]}
        )
        assert status == 200, body
        status, _, _ = await login(client, body["access_token"])
        assert status == 201  # the user id came along


def _db_facts(db: Path) -> tuple[set[str], str, str]:
    with sqlite3.connect(db) as conn:
        digests = {row[0] for row in conn.execute("SELECT access_digest FROM tokens")}
        (hashed,) = conn.execute("SELECT secret_hash FROM oauth_clients").fetchone()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return digests, hashed, mode


@pytest.mark.contract
async def test_secrets_never_reach_the_database(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    async with running(db) as (server, client):
        pair = await new_token(client, "VIRTUAL_NUMBER")
        code = await consent_code(client, "4255550102", "http://localhost/cb")
        secret = server.settings.client_secret
        raw = db_bytes(tmp_path, "g.db")
        for value in (pair["access_token"], pair["refresh_token"], code, secret):
            assert value.encode() not in raw
        digests, hashed, mode = _db_facts(db)
        assert digest(pair["access_token"]) in digests
        assert digest(code).encode() in raw
        assert hashed.startswith("pbkdf2_sha256$") and secret not in hashed
        assert mode == "wal"


# the pieces, without HTTP ----------------------------------------------------------------
@pytest.mark.unit
def test_token_bucket() -> None:
    limiter = RateLimiter(rate=2.0, burst=2)
    limiter.take("t", "a", now=0.0)
    limiter.take("t", "a", now=0.0)
    with pytest.raises(RateLimited) as exc:
        limiter.take("t", "a", now=0.0)
    assert exc.value.retry_after == pytest.approx(0.5) and exc.value.retry_after_s == 1
    limiter.take("t", "b", now=0.0)  # another address
    limiter.take("s", "a", now=0.0)  # another bucket
    limiter.take("t", "a", now=0.5)  # refilled one
    RateLimiter(rate=0, burst=1).take("t", "a")  # disabled


@pytest.mark.unit
def test_redirect_uris() -> None:
    allowed = ["http://127.0.0.1", "http://localhost", "https://app.example:8443/oauth"]
    for uri in (
        "http://127.0.0.1:5000/cb",
        "http://localhost/x?y=1",
        "https://app.example:8443/oauth",
        "https://app.example:8443/oauth/cb",
    ):
        assert redirect_allowed(uri, allowed), uri
    for uri in (
        "https://127.0.0.1/cb",  # scheme
        "http://localhost.evil.example/",
        "http://evil.example/?http://localhost",
        "https://app.example/oauth/cb",  # port
        "https://app.example:8443/oauthx",
        "http://user@localhost/cb",
        "http://localhost/cb#frag",
        "javascript:alert(1)",
        "http://localhost:99999/",
    ):
        assert not redirect_allowed(uri, allowed), uri

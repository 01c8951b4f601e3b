"""Talking to a real gateway over HTTP in tests: a running server with a client, wire
calls, tokens, logins, the consent steps without a browser, and reading wire errors."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import aiohttp
from yarl import URL

from ivrbot.config import Settings
from ivrbot.wire.server import GatewayServer

RTC = "/RTC/v1"


@asynccontextmanager
async def running(
    db: Path, **overrides: Any
) -> AsyncIterator[tuple[GatewayServer, aiohttp.ClientSession]]:
    server = GatewayServer(Settings(port=0, db=str(db), **overrides))
    await server.start()
    try:
        async with aiohttp.ClientSession(server.url) as client:
            yield server, client
    finally:
        await server.stop()


async def call(
    client: aiohttp.ClientSession,
    method: str,
    path: str,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> tuple[int, Any, Any]:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    async with client.request(method, path, headers=all_headers, **kwargs) as resp:
        text = await resp.text()
        body: Any = None
        if resp.content_type == "application/json" and text:
            body = await resp.json()
        return resp.status, body if body is not None else text, resp.headers


def message_id(body: Any) -> str:
    """The MessageId of a wire error body (ServiceException or PolicyException)."""
    (exc,) = body["RequestError"].values()
    return str(exc["MessageId"])


def error_text(body: Any) -> str:
    (exc,) = body["RequestError"].values()
    return str(exc["Text"])


async def new_token(client: aiohttp.ClientSession, app_scope: str, **extra: Any) -> dict[str, Any]:
    status, body, _ = await call(client, "POST", "/tokens", json={"app_scope": app_scope, **extra})
    assert status == 200, body
    return dict(body)


async def login(
    client: aiohttp.ClientSession,
    access: str,
    user_id: str | None = None,
    e911_id: str | None = None,
) -> tuple[int, Any, Any]:
    if user_id is not None:
        status, body, _ = await call(client, "PUT", f"{RTC}/userIds/{user_id}", access)
        assert status == 204, body
    headers = {"x-e911Id": e911_id} if e911_id else {}
    session = {"mediaType": "dtls-srtp", "ice": "true", "services": ["ip_voice_call"]}
    return await call(
        client, "POST", f"{RTC}/sessions", access, headers=headers, json={"session": session}
    )


def page_value(page: str, name: str) -> str:
    """A hidden field's value on a consent page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} on the page"
    return found.group(1)


def dev_code(page: str) -> str:
    """The verification code the development verifier shows on the page."""
    found = re.search(r'id="dev-code">(\d{6})<', page)
    assert found, "no development code on the page"
    return found.group(1)


async def consent_code(
    client: aiohttp.ClientSession, number: str, redirect: str, field: str = "mobile_number"
) -> str:
    """The consent step without a browser: POST the number, then the code the development
    verifier shows, and read the authorization code from the redirect."""
    form = {"redirect_uri": redirect, "state": "st", field: number, "decision": "allow"}
    async with client.post("/oauth/v4/authorize", data=form, allow_redirects=False) as resp:
        assert resp.status == 200, await resp.text()
        page = await resp.text()
    form.update(verification=page_value(page, "verification"), otp=dev_code(page))
    async with client.post("/oauth/v4/authorize", data=form, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        location = resp.headers["Location"]
    return URL(location).query["code"]


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def db_bytes(folder: Path, name: str) -> bytes:
    """The database file and its WAL, as stored on disk."""
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith(name))

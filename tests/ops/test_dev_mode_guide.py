"""What ``ivrbot run``'s banner says about getting in, and the one line a refused client
prints: the development login in full, a real secret never; what leaving development mode
asks for."""

from __future__ import annotations

import pytest
from rich.console import Console

from ivrbot.config import DEV_CLIENT_ID, DEV_CLIENT_SECRET, Settings
from ivrbot.credentials import Credentials, dashboard_login, leaving_development, refused

pytestmark = pytest.mark.unit

SECRET = "operator-secret-0123456789"
KEY = "app-server-key-0123456789"


def test_development_mode_prints_the_login_and_how_to_leave() -> None:
    dev = Settings(host="127.0.0.1")
    assert dev.development
    login = dashboard_login(dev)
    assert f"client id {DEV_CLIENT_ID}, secret {DEV_CLIENT_SECRET}" in login
    leave = leaving_development(dev)
    assert "IVRBOT_CLIENT_SECRET" in leave and "IVRBOT_API_KEYS" in leave
    assert "--api-key" in leave and "IVRBOT_API_KEY" in leave


def test_with_credentials_set_the_secret_is_named_never_printed() -> None:
    locked = Settings(host="0.0.0.0", client_secret=SECRET, api_keys=[KEY, KEY + "2"])
    assert not locked.development
    out = Console(record=True, width=200)
    out.print(dashboard_login(locked), leaving_development(locked))
    text = out.export_text()
    assert SECRET not in text and KEY not in text
    assert "IVRBOT_CLIENT_SECRET" in text and "2 API keys in IVRBOT_API_KEYS" in text
    none = leaving_development(Settings(host="0.0.0.0", client_secret=SECRET))
    assert "no API keys" in none and "IVRBOT_API_KEYS" in none


def test_a_refusal_says_what_to_pass() -> None:
    reason = "unknown API key in X-API-Key"
    assert refused(401, "POST /tokens needs ...", Credentials()) == (
        "401: this gateway needs an API key: pass --api-key or set IVRBOT_API_KEY "
        "(one of the gateway's IVRBOT_API_KEYS)"
    )
    wrong = refused(401, reason, Credentials(api_key="nope-nope-nope-nope"))
    assert wrong.startswith("401: this gateway refused the API key (unknown API key")
    operator = refused(401, "unknown client", Credentials.operator("me", SECRET))
    assert "IVRBOT_CLIENT_SECRET" in operator and SECRET not in operator


def test_bots_present_a_key_given_else_the_operators_credentials() -> None:
    assert Credentials.for_bots(KEY, Settings()).api_key == KEY
    operator = Credentials.for_bots(None, Settings(client_secret=SECRET, api_key=KEY))
    assert operator.client_secret == SECRET and not operator.api_key
    assert Credentials.for_bots(None, Settings(api_key=KEY)).api_key == KEY
    assert Credentials.for_bots(None, Settings()).client_secret == DEV_CLIENT_SECRET

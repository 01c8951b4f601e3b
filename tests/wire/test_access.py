"""The access model over real HTTP (README: Access and security): who gets tokens, the
bots' reserved numbers, identities held by another client, mobile numbers verified by a
code, development mode and the settings a public gateway refuses to start with."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivrbot.config import DEV_CLIENT_ID, DEV_CLIENT_SECRET, ConfigError, Settings
from ivrbot.credentials import Credentials
from ivrbot.errors import PhoneException, api_error_code
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.serve import Runner
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SPEECH_DB, SimulatedCaller
from ivrbot.wire.server import GatewayServer
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
    page_value,
    running,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-for-the-operator-only"
KEY_A, KEY_B = "app-a-key-0123456789abcdef", "app-b-key-0123456789abcdef"
PUBLIC = {"client_secret": SECRET, "api_keys": [KEY_A, KEY_B]}  # dev mode 'auto' -> off
HELLO = """from ivrbot.flow import Flow, Hangup

flow = Flow("hello", number="{number}")
flow.add(Hangup("bye", "Hello and goodbye."))
"""


async def token(client: aiohttp.ClientSession, scope: str, **headers: str) -> str:
    status, body, _ = await call(
        client, "POST", "/tokens", headers=headers, json={"app_scope": scope}
    )
    assert status == 200, body
    return str(body["access_token"])


async def put_user(client: aiohttp.ClientSession, access: str, user_id: str) -> tuple[int, Any]:
    status, body, _ = await call(client, "PUT", f"{RTC}/userIds/{user_id}", access)
    return status, body


async def heard_the_bot(caller: SimulatedCaller) -> None:
    """The bot answered, said its line and hung up."""
    async with asyncio.timeout(30):
        await caller.disconnected.wait()
    assert any(db > SPEECH_DB for _, db in caller.ear.levels)


def refused(status: int, body: Any, *words: str) -> None:
    """403 POL1009 (the Phone's 1809) whose text has ``words``."""
    assert (status, message_id(body)) == (403, "POL1009"), body
    assert api_error_code(status, message_id(body)) == "1809"
    for word in words:
        assert word in error_text(body), (word, body)


# who gets tokens ---------------------------------------------------------------------------
@pytest.mark.contract
async def test_tokens_need_credentials_outside_development_mode(tmp_path: Path) -> None:
    async with running(tmp_path / "g.db", **PUBLIC) as (server, client):
        assert not server.settings.development
        status, config, _ = await call(client, "GET", "/config")
        assert config["development_mode"] is False and "warning" not in config
        for headers in ({}, {"X-API-Key": "guessed-key-0123456789"}, basic_auth("x", "y")):
            status, body, _ = await call(
                client, "POST", "/tokens", headers=headers, json={"app_scope": "VIRTUAL_NUMBER"}
            )
            assert (status, message_id(body)) == (401, "POL0001"), headers
        status, body, _ = await call(client, "POST", "/tokens", json={"app_scope": "ACCOUNT_ID"})
        assert "X-API-Key" in error_text(body) and "IVRBOT_API_KEYS" in error_text(body)
        # the development secret is refused, under any client id
        for client_id in (DEV_CLIENT_ID, server.settings.client_id):
            status, body, _ = await call(
                client, "POST", "/tokens", headers=basic_auth(client_id, DEV_CLIENT_SECRET),
                json={"app_scope": "VIRTUAL_NUMBER"},
            )  # fmt: skip
            assert (status, message_id(body)) == (401, "POL0001")
        async with client.post(
            "/oauth/v4/token",
            data={"grant_type": "client_credentials", "scope": "VIRTUAL_NUMBER"},
            headers=basic_auth(DEV_CLIENT_ID, DEV_CLIENT_SECRET),
        ) as r:
            assert (r.status, (await r.json())["error"]) == (401, "invalid_client")
        # the legitimate callers: an app server's key, the operator's secret
        app = await token(client, "ACCOUNT_ID", **{"X-API-Key": KEY_A})
        assert (await put_user(client, app, "ann@ivrbot.local"))[0] == 204
        assert (await login(client, app))[0] == 201
        operator = basic_auth(server.settings.client_id, SECRET)
        bot = await token(client, "VIRTUAL_NUMBER", **operator)
        assert (await put_user(client, bot, "vtn:5550001001"))[0] == 204
        # ivrbot's own clients present them too (fetch_token, as bots and `ivrbot call` do)
        assert await fetch_token(server.url, "ACCOUNT_ID", Credentials(api_key=KEY_B))
        assert await fetch_token(
            server.url, "VIRTUAL_NUMBER", Credentials.operator(DEV_CLIENT_ID, SECRET)
        )
    raw = db_bytes(tmp_path, "g.db")
    for secret in (SECRET, KEY_A, KEY_B):
        assert secret.encode() not in raw


@pytest.mark.contract
async def test_development_mode_is_open_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running(tmp_path / "g.db") as (server, client):
        assert server.settings.development  # loopback, no credentials configured
        assert any("DEVELOPMENT MODE" in r.getMessage() for r in caplog.records)
        status, config, _ = await call(client, "GET", "/config")
        assert (
            status == 200
            and config["development_mode"] is True
            and "development mode" in config["warning"]
        )
        access = await token(client, "ACCOUNT_ID")  # no credentials needed
        assert (await put_user(client, access, "dev@ivrbot.local"))[0] == 204


@pytest.mark.contract
async def test_tokens_issued_in_development_mode_end_with_it(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    async with running(db) as (_, client):
        anonymous = await token(client, "ACCOUNT_ID")
        assert (await put_user(client, anonymous, "old@ivrbot.local"))[0] == 204
        status, pair, _ = await call(client, "POST", "/tokens", json={"app_scope": "E911"})
        dev_bot = await token(
            client, "VIRTUAL_NUMBER", **basic_auth(DEV_CLIENT_ID, DEV_CLIENT_SECRET)
        )
    async with running(db, **PUBLIC) as (_, client):  # the same database, in public
        for access in (anonymous, dev_bot):  # dev-mode token, dev-secret token: revoked
            status, body, _ = await login(client, access)
            assert (status, message_id(body)) == (401, "POL0001")
            assert "revoked" in error_text(body)
        status, body, _ = await call(
            client, "POST", "/tokens", json={"refresh_token": pair["refresh_token"]}
        )
        assert (status, message_id(body)) == (401, "POL0001")


# settings a gateway refuses to start with ------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"host": "0.0.0.0"}, ["0.0.0.0", "IVRBOT_CLIENT_SECRET"]),
        ({"dev_mode": "off"}, ["IVRBOT_DEV_MODE", "IVRBOT_CLIENT_SECRET"]),
        ({"host": "0.0.0.0", "client_secret": "short"}, ["IVRBOT_CLIENT_SECRET", "16"]),
        ({"host": "0.0.0.0", "client_secret": SECRET, "api_keys": ["k"]}, ["IVRBOT_API_KEYS"]),
        ({"client_secret": SECRET, "mobile_verifier": "dev"}, ["IVRBOT_MOBILE_VERIFIER"]),
        ({"dev_mode": "maybe"}, ["IVRBOT_DEV_MODE", "auto, on or off"]),
    ],
)
async def test_unsafe_settings_refuse_to_start(
    tmp_path: Path, overrides: dict[str, Any], names: list[str]
) -> None:
    server = GatewayServer(Settings(port=0, db=str(tmp_path / "g.db"), **overrides))
    with pytest.raises(ConfigError) as exc:
        await server.start()
    message = str(exc.value)
    assert "\n" not in message
    for name in names:
        assert name in message, message
    await server.stop()


@pytest.mark.unit
def test_public_address_with_credentials_starts_without_warnings() -> None:
    settings = Settings(host="0.0.0.0", client_secret=SECRET, api_keys=[KEY_A])
    assert not settings.development and settings.check_access() == []
    open_on_purpose = Settings(host="0.0.0.0", dev_mode="on")
    (warning,) = open_on_purpose.check_access()
    assert "ANYONE who reaches 0.0.0.0" in warning


@pytest.mark.e2e
def test_ivrbot_run_on_a_public_address_without_credentials_is_one_line(tmp_path: Path) -> None:
    import subprocess

    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello.py").write_text(HELLO.format(number="5550001071"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVRBOT_")}
    proc = subprocess.run(
        [sys.executable, "-m", "ivrbot", "run", str(flows), "--host", "0.0.0.0", "--port", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**env, "IVRBOT_DB": str(tmp_path / "g.db")},
    )  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "IVRBOT_CLIENT_SECRET" in lines[0] and "IVRBOT_DEV_MODE" in lines[0]


# the bots' numbers -------------------------------------------------------------------------
@pytest.mark.e2e
async def test_ivrbot_run_warns_and_keeps_the_bots_number(tmp_path: Path) -> None:
    """The reported hijack against `ivrbot run` on 127.0.0.1: token without credentials,
    PUT /userIds/vtn:<the bot's number>, log in. Refused; the bot still answers."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello.py").write_text(HELLO.format(number="5550001072"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVRBOT_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivrbot", "run", str(flows), "--port", "0", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**env, "IVRBOT_DB": str(tmp_path / "g.db"), "COLUMNS": "300"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        banner = ""
        async with asyncio.timeout(60):
            while "flow hello" not in banner:
                line = await proc.stdout.readline()
                assert line, f"ivrbot run exited early: {banner}"
                banner += line.decode()
        assert "WARNING: DEVELOPMENT MODE" in banner and "IVRBOT_CLIENT_SECRET" in banner
        url = next(w for w in banner.split() if w.startswith("http://127.0.0.1:"))
        async with aiohttp.ClientSession(url) as client:
            attacker = await token(client, "VIRTUAL_NUMBER")
            for user_id in ("vtn:5550001072", "vtn:15550001072"):
                refused(*await put_user(client, attacker, user_id), "reserved")
        async with Synthesizer() as tts:
            caller = SimulatedCaller(url, tts)
            try:
                await caller.dial("5550001072")
                await heard_the_bot(caller)
            finally:
                await caller.close()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
        stderr = (await proc.stderr.read()).decode()
        assert "DEVELOPMENT MODE" in stderr  # the log says it too
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.e2e
async def test_reserved_numbers_are_the_operators(tmp_path: Path, tts: Synthesizer) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello.py").write_text(HELLO.format(number="5550001073"))
    runner = Runner(flows, Settings(port=0, db=str(tmp_path / "g.db"), **PUBLIC))
    url = await runner.start()  # its bots log in with the operator's credentials
    attacker = Phone(url, name="attacker")
    caller = SimulatedCaller(url, tts, user="pat")
    try:
        async with aiohttp.ClientSession(url) as client:
            app = await token(client, "VIRTUAL_NUMBER", **{"X-API-Key": KEY_A})
            refused(*await put_user(client, app, "vtn:5550001073"), "reserved", "bots")
            account = await token(client, "ACCOUNT_ID", **{"X-API-Key": KEY_A})
            assert (await put_user(client, account, "pat@ivrbot.local"))[0] == 204
            # a remote bot process with the operator's secret may share the number
            remote = await token(client, "VIRTUAL_NUMBER", **basic_auth(DEV_CLIENT_ID, SECRET))
            assert (await put_user(client, remote, "vtn:5550001073"))[0] == 204
            assert (await login(client, remote))[0] == 201
        with pytest.raises(PhoneException) as exc:  # the Phone: login fails with 1809
            await attacker.login(
                token=await fetch_token(url, "VIRTUAL_NUMBER", Credentials(api_key=KEY_B)),
                user_id="vtn:5550001073",
            )
        assert exc.value.error.error_code == "1809"
        with pytest.MonkeyPatch.context() as env:  # `ivrbot call` presents IVRBOT_API_KEY
            env.setenv("IVRBOT_API_KEY", KEY_A)  # the app that holds pat@
            await caller.dial("5550001073")
        await heard_the_bot(caller)
    finally:
        await caller.close()
        await attacker.close()
        await runner.stop()


@pytest.mark.e2e
async def test_a_number_taken_while_its_flow_did_not_load_goes_back_to_the_bot(
    tmp_path: Path, tts: Synthesizer
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hello.py").write_text(HELLO.format(number="5550001076"))
    (flows / "late.py").write_text("this is not python\n")
    runner = Runner(flows, Settings(port=0, db=str(tmp_path / "g.db")))
    url = await runner.start()  # serves hello; late.py is reported
    squatter = Phone(url, name="squatter")
    caller = SimulatedCaller(url, tts)
    try:
        await squatter.login(
            token=await fetch_token(url, "VIRTUAL_NUMBER"), user_id="vtn:5550001077"
        )
        (flows / "late.py").write_text(HELLO.format(number="5550001077"))
        assert await runner.reload_changed() == ["hello"]  # the flow's name, now served
        gateway = runner.server.gateway
        for session in gateway.sessions:  # the squatter's session ended; only bots are left
            token = gateway.tokens.token_for(session.token_digest)
            assert token is not None and gateway.tokens.is_operator(token), session.user_id
        await caller.dial("5550001077")
        await heard_the_bot(caller)
    finally:
        await caller.close()
        await squatter.close()
        await runner.stop()


@pytest.mark.contract
async def test_a_token_bound_before_the_reservation_cannot_log_in(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    async with running(db) as (_, client):
        early = await token(client, "VIRTUAL_NUMBER")
        assert (await put_user(client, early, "vtn:5550001074"))[0] == 204
    async with running(db, reserved_ids=["5550001074"]) as (_, client):  # IVRBOT_RESERVED_IDS
        status, body, _ = await login(client, early)
        refused(status, body, "vtn:5550001074", "reserved")
        bot = await token(client, "VIRTUAL_NUMBER", **basic_auth(DEV_CLIENT_ID, DEV_CLIENT_SECRET))
        assert (await login(client, bot, "vtn:5550001074"))[0] == 201


# identities held by another client -------------------------------------------------------
@pytest.mark.contract
async def test_another_clients_identity_cannot_be_claimed(tmp_path: Path) -> None:
    keys = {"dev_mode": "on", "api_keys": [KEY_A, KEY_B]}
    async with running(tmp_path / "g.db", **keys) as (_, client):
        a = {"X-API-Key": KEY_A}
        alice, number = (
            await token(client, "ACCOUNT_ID", **a),
            await token(client, "VIRTUAL_NUMBER", **a),
        )
        assert (await put_user(client, alice, "alice@ivrbot.local"))[0] == 204
        assert (await put_user(client, number, "vtn:5550001075"))[0] == 204
        b = await token(client, "ACCOUNT_ID", **{"X-API-Key": KEY_B})
        b_number = await token(client, "VIRTUAL_NUMBER", **{"X-API-Key": KEY_B})
        anonymous = await token(client, "ACCOUNT_ID")
        for other in (b, anonymous):
            refused(*await put_user(client, other, "alice@ivrbot.local"), "another application")
            refused(*await put_user(client, other, "ALICE@ivrbot.local"), "another application")
        refused(*await put_user(client, b_number, "vtn:5550001075"), "another application")
        # the same app may log its user in again (another device)
        second_device = await token(client, "ACCOUNT_ID", **a)
        assert (await login(client, second_device, "alice@ivrbot.local"))[0] == 201
        # once the holder's tokens are revoked, the number is free again
        status, _, _ = await call(client, "DELETE", "/tokens", json={"token": number})
        assert status == 204
        assert (await put_user(client, b_number, "vtn:5550001075"))[0] == 204


# mobile numbers -----------------------------------------------------------------------------
async def consent_form(
    client: aiohttp.ClientSession, number: str, **extra: str
) -> tuple[int, str, Any]:
    form = {"redirect_uri": "http://127.0.0.1/cb", "state": "s", "mobile_number": number,
            "decision": "allow", **extra}  # fmt: skip
    async with client.post("/oauth/v4/authorize", data=form, allow_redirects=False) as r:
        return r.status, await r.text(), r.headers


@pytest.mark.contract
async def test_a_mobile_number_is_bound_only_with_its_code(tmp_path: Path) -> None:
    async with running(tmp_path / "g.db") as (server, client):
        status, page, headers = await consent_form(client, "4255550150")
        assert status == 200 and "Location" not in headers  # no code yet: a code was sent
        vid, otp = page_value(page, "verification"), dev_code(page)
        assert "Development mode" in page
        wrong = "000000" if otp != "000000" else "111111"
        status, page, headers = await consent_form(
            client, "4255550150", verification=vid, otp=wrong
        )
        assert status == 400 and "wrong code" in page and "Location" not in headers
        # a code proves its own request only: not for another app's redirect
        status, page, headers = await consent_form(
            client, "4255550150", verification=vid, otp=otp, redirect_uri="http://localhost/cb"
        )
        assert status == 400 and "Location" not in headers
        status, page, headers = await consent_form(
            client, "4255550150", verification="forged", otp=otp
        )
        assert status == 400 and "ask for a new one" in page
        # guessing: the code dies after 5 wrong tries, even the right one is refused then
        for _ in range(4):
            status, page, _ = await consent_form(client, "4255550150", verification=vid, otp=wrong)
        assert "too many wrong codes" in page
        status, page, headers = await consent_form(client, "4255550150", verification=vid, otp=otp)
        assert status == 400 and "Location" not in headers
        # at most 3 codes out per number
        for _ in range(3):
            assert (await consent_form(client, "4255550151"))[0] == 200
        status, page, _ = await consent_form(client, "4255550151")
        assert status == 400 and "too many codes" in page
        # the right code, once: an authorization code for the number
        code = await consent_code(client, "4255550152", "http://127.0.0.1:1/cb")
        status, body, _ = await call(
            client, "POST", "/tokens", json={"app_scope": "MOBILE_NUMBER", "auth_code": code}
        )
        assert status == 200, body
        status, _, headers = await login(client, body["access_token"])
        assert status == 201
        sid = headers["Location"].rsplit("/", 1)[1]
        assert server.gateway.sessions.get(sid).user_id == "4255550152"  # type: ignore[union-attr]


VERIFIER = """import os, sys
from pathlib import Path
Path(sys.argv[1]).write_text(os.environ["IVRBOT_VERIFY_NUMBER"] + " " + os.environ["IVRBOT_VERIFY_CODE"])
"""


@pytest.mark.contract
async def test_an_operators_verifier_sends_the_code(tmp_path: Path) -> None:
    script, outbox = tmp_path / "send_sms.py", tmp_path / "outbox.txt"
    script.write_text(VERIFIER)
    verifier = f"{sys.executable} {script} {outbox}"
    async with running(tmp_path / "g.db", mobile_verifier=verifier, **PUBLIC) as (_, client):
        status, page, _ = await consent_form(client, "+1 425 555 0160")
        assert status == 200 and 'id="dev-code"' not in page  # the page does not show it
        number, otp = outbox.read_text().split()
        assert number == "4255550160" and len(otp) == 6 and otp not in page
        vid = page_value(page, "verification")
        status, _, headers = await consent_form(
            client, "+1 425 555 0160", verification=vid, otp=otp
        )
        assert status == 302 and "code=" in headers["Location"]
    async with running(tmp_path / "g2.db", mobile_verifier="false", **PUBLIC) as (_, client):
        status, page, headers = await consent_form(client, "4255550161")
        assert status == 400 and "could not be sent" in page and "Location" not in headers
    async with running(tmp_path / "g3.db", **PUBLIC) as (_, client):  # no verifier: no binding
        status, page, headers = await consent_form(client, "4255550162")
        assert status == 400 and "IVRBOT_MOBILE_VERIFIER" in page and "Location" not in headers

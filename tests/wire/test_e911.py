"""E911 ids over real HTTP: validation, who may create them, sessions that carry them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivrbot.errors import api_error_code
from tests.wire.wire import (
    RTC,
    call,
    consent_code,
    error_text,
    login,
    message_id,
    new_token,
    running,
)

pytestmark = pytest.mark.contract

ADDRESS = {
    "first_name": "Ann",
    "last_name": "Lee",
    "house_number": "1600",
    "street": "Pennsylvania Ave NW",
    "unit": "",
    "city": "Washington",
    "state": "dc",
    "zip": "20500",
}


async def create(
    client: aiohttp.ClientSession, token: str | None, address: Any = None, confirmed: Any = True
) -> tuple[int, Any]:
    body: dict[str, Any] = {"address": ADDRESS if address is None else address}
    if token is not None:
        body["token"] = token
    if confirmed is not None:
        body["is_confirmed"] = confirmed
    status, result, _ = await call(client, "POST", "/e911ids", json=body)
    return status, result


async def test_virtual_number_user_creates_an_id(gwc: Any) -> None:
    server, client = gwc
    token = (await new_token(client, "VIRTUAL_NUMBER"))["access_token"]
    status, _, _ = await call(client, "PUT", f"{RTC}/userIds/vtn:5550001020", token)
    assert status == 204
    status, body = await create(client, token)
    assert status == 200, body
    location = body["e911Locations"]
    assert location["is_confirmed"] is True
    assert location["address"]["state"] == "DC"  # normalised
    assert "unit" not in location["address"]  # empty optional field dropped
    stored = await server.gateway.store.get_e911(location["addressIdentifier"])
    assert stored is not None and stored.created_by == "vtn:5550001020"
    assert stored.address == location["address"]


async def test_who_may_create_one(gwc: Any) -> None:
    _, client = gwc
    for scope in ("VIRTUAL_NUMBER", "E911"):
        token = (await new_token(client, scope))["access_token"]
        assert (await create(client, token))[0] == 200, scope
    code = await consent_code(client, "2065550100", "http://127.0.0.1/cb")
    mobile = await new_token(client, "MOBILE_NUMBER", auth_code=code)
    status, body = await create(client, mobile["access_token"])
    assert status == 200, body
    account = (await new_token(client, "ACCOUNT_ID"))["access_token"]
    status, body = await create(client, account)
    assert (status, message_id(body)) == (403, "POL1009")
    assert "mobile-number and virtual-number" in error_text(body)
    status, body = await create(client, None)
    assert (status, message_id(body)) == (401, "POL0001")
    assert "token" in error_text(body)
    e911 = (await new_token(client, "E911"))["access_token"]
    status, _, _ = await call(
        client, "POST", "/e911ids", e911, json={"address": ADDRESS, "is_confirmed": True}
    )
    assert status == 200  # the token as a bearer header
    status, body = await create(client, "not-a-token")
    assert (status, message_id(body)) == (401, "POL0001")
    status, body = await create(client, 12345)  # type: ignore[arg-type]
    assert (status, message_id(body)) == (400, "SVC0002")
    assert "token" in error_text(body)


@pytest.mark.parametrize(
    ("change", "want", "field"),
    [
        ({"first_name": None}, "SVC0015", "first_name"),
        ({"street": "   "}, "SVC0015", "street"),
        ({"city": "x" * 101}, "SVC0015", "city"),
        ({"house_number": "A"}, "SVC0015", "house_number"),
        ({"zip": 20500}, "SVC0002", "zip"),
        ({"state": "Washington"}, "SVC0017", "state"),
        ({"state": "ZZ"}, "SVC0017", "state"),
        ({"zip": "2050"}, "SVC0018", "zip"),
        ({"zip": "20500-0003"}, "SVC0018", "zip"),
        ({"zip": "2050a"}, "SVC0018", "zip"),
    ],
)
async def test_address_validation(gwc: Any, change: dict[str, Any], want: str, field: str) -> None:
    _, client = gwc
    token = (await new_token(client, "E911"))["access_token"]
    address = {k: v for k, v in {**ADDRESS, **change}.items() if v is not None}
    status, body = await create(client, token, address)
    assert (status, message_id(body)) == (400, want)
    assert f"address.{field}" in error_text(body)
    assert api_error_code(status, want) == ("1002" if want == "SVC0002" else "10" + want[-2:])


async def test_malformed_requests(gwc: Any) -> None:
    _, client = gwc
    token = (await new_token(client, "E911"))["access_token"]
    status, body = await create(client, token, ["not", "an", "object"])
    assert (status, message_id(body)) == (400, "SVC0002")
    assert "address" in error_text(body)
    status, body = await create(client, token, confirmed="maybe")
    assert (status, message_id(body)) == (400, "SVC0002")
    assert "is_confirmed" in error_text(body)
    status, body, _ = await call(client, "POST", "/e911ids", data=b"{")
    assert (status, message_id(body)) == (400, "SVC0002")


async def test_unconfirmed_addresses_need_confirmation(gwc: Any) -> None:
    _, client = gwc
    token = (await new_token(client, "E911"))["access_token"]
    status, body = await create(client, token, confirmed=False)
    assert (status, message_id(body)) == (400, "SVC0016")
    assert "is_confirmed" in error_text(body)
    status, body = await create(client, token, confirmed=None)  # missing means false
    assert (status, message_id(body)) == (400, "SVC0016")
    status, first = await create(client, token, confirmed="true")
    assert status == 200
    # once confirmed, the same address is known: no confirmation needed
    status, again = await create(client, token, confirmed=False)
    assert status == 200
    assert (
        again["e911Locations"]["addressIdentifier"] == first["e911Locations"]["addressIdentifier"]
    )


async def test_sessions_carry_e911_ids(gwc: Any) -> None:
    server, client = gwc
    vtn = (await new_token(client, "VIRTUAL_NUMBER"))["access_token"]
    status, body = await create(client, vtn)
    e911_id = body["e911Locations"]["addressIdentifier"]
    status, body, _ = await login(client, vtn, "vtn:5550001021", e911_id="no-such-id")
    assert (status, message_id(body)) == (400, "SVC8511")
    assert "no-such-id" in error_text(body)
    assert api_error_code(status, "SVC8511") == "1511"
    status, _, headers = await login(client, vtn, e911_id=e911_id)
    assert status == 201
    path = headers["Location"]
    session = server.gateway.sessions.get(path.rsplit("/", 1)[1])
    assert session.e911_id == e911_id
    # re-association on refresh
    status, other = await create(client, vtn, {**ADDRESS, "house_number": "1601"})
    other_id = other["e911Locations"]["addressIdentifier"]
    status, _, headers = await call(
        client, "PUT", path, vtn, json={"e911Association": {"e911Id": other_id}}
    )
    assert status == 204 and headers["x-expires"] == "3600"
    assert session.e911_id == other_id
    status, body, _ = await call(
        client, "PUT", path, vtn, json={"e911Association": {"e911Id": "nope"}}
    )
    assert (status, message_id(body)) == (400, "SVC8511")
    assert session.e911_id == other_id
    for bad in ({"e911Association": "x"}, {"e911Association": {"e911Id": 5}}):
        status, body, _ = await call(client, "PUT", path, vtn, json=bad)
        assert (status, message_id(body)) == (400, "SVC0002")
        assert "e911Association.e911Id" in error_text(body)
    # without an id a virtual-number user may still log in (unless E911 is required)
    status, _, _ = await login(client, vtn)
    assert status == 201
    # account-id users need none, and one they send is not used
    acc = (await new_token(client, "ACCOUNT_ID"))["access_token"]
    status, _, headers = await login(client, acc, "zed@ivrbot.local", e911_id="whatever")
    assert status == 201
    assert server.gateway.sessions.get(headers["Location"].rsplit("/", 1)[1]).e911_id is None


async def test_e911_can_be_required(tmp_path: Path) -> None:
    async with running(tmp_path / "g.db", e911_required=True) as (_, client):
        vtn = (await new_token(client, "VIRTUAL_NUMBER"))["access_token"]
        status, body, _ = await login(client, vtn, "vtn:5550001022")
        assert (status, message_id(body)) == (400, "SVC8511")
        _, created = await create(client, vtn)
        e911_id = created["e911Locations"]["addressIdentifier"]
        assert (await login(client, vtn, e911_id=e911_id))[0] == 201
        acc = (await new_token(client, "ACCOUNT_ID"))["access_token"]
        assert (await login(client, acc, "amy@ivrbot.local"))[0] == 201

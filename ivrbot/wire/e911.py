"""The E911 service: addresses for emergency calls, as ids that sessions carry.

``POST /e911ids {token, address, is_confirmed}`` -> ``{e911Locations: {addressIdentifier,
status, address, is_confirmed}}``; the client logs in with ``x-e911Id: <addressIdentifier>``.

Who may create one: a token with the EMERGENCYSERVICES scope, that is a mobile-number user
(MOBILE_NUMBER), a virtual-number user (VIRTUAL_NUMBER), or the app server acting for its
virtual-number users (E911). Anyone else (an ACCOUNT_ID token) gets 403 POL1009.

Errors (HTTP 400 unless noted; the Phone maps SVC0015-0018 to 1015-1018):

| MessageId | when |
|---|---|
| SVC0002 | the body, ``token``, ``address`` or a field has the wrong JSON type (names it) |
| SVC0015 | a required field (first_name, last_name, house_number, street, city, state, zip) is missing or empty, a field is longer than 100 characters, or house_number has no digit |
| SVC0016 | ``is_confirmed`` is not true and the address is not already known (confirmed) here: the user confirms it and sends it again with ``is_confirmed: true`` |
| SVC0017 | ``state`` is not a two-letter US state, DC or territory code |
| SVC0018 | ``zip`` is not five digits |
| POL0001 (401) | ``token`` is missing, unknown, expired or revoked |
| POL1009 (403) | the token is not one that may create E911 ids (see above) |

The token may also come as ``Authorization: Bearer``. An unconfirmed address that is already
known returns the existing id. Ids are 128-bit random strings and are not tied to the user who
created them (the app server creates them for its users with an E911 token).

Sessions: mobile-number and virtual-number users may log in with ``x-e911Id``; when they do,
it must name an existing id (else 400 SVC8511). ``IVRBOT_E911_REQUIRED=1`` makes it mandatory
for them. Account-id users need none: their ``x-e911Id`` is ignored. ``PUT
/RTC/v1/sessions/{sid} {e911Association: {e911Id}}`` re-associates under the same rules.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from ivrbot.store.base import E911Record
from ivrbot.wire.auth import E911_SCOPE, AppScope, AuthError, Token
from ivrbot.wire.gateway import Gateway
from ivrbot.wire.http import ApiError, gw, json_body, limit

REQUIRED = ("first_name", "last_name", "house_number", "street", "city", "state", "zip")
OPTIONAL = ("unit",)
MAX_FIELD = 100
CREATORS = (AppScope.MOBILE_NUMBER, AppScope.VIRTUAL_NUMBER, AppScope.E911)
TELEPHONE_USERS = (AppScope.MOBILE_NUMBER, AppScope.VIRTUAL_NUMBER)
STATES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP".split()
)


def validate_address(raw: Any) -> dict[str, str]:
    """The address, trimmed and normalised (state upper-case); ApiError naming the field."""
    if not isinstance(raw, dict):
        raise ApiError("SVC0002", "address (an object with " + ", ".join(REQUIRED) + ", unit?)")
    address: dict[str, str] = {}
    for name in REQUIRED + OPTIONAL:
        value = raw.get(name)
        if value is None:
            if name in REQUIRED:
                raise ApiError("SVC0015", f"address.{name} is required")
            continue
        if not isinstance(value, str):
            raise ApiError("SVC0002", f"address.{name} (a string is required)")
        value = " ".join(value.split())
        if not value:
            if name in REQUIRED:
                raise ApiError("SVC0015", f"address.{name} is empty")
            continue
        if len(value) > MAX_FIELD:
            raise ApiError("SVC0015", f"address.{name} is longer than {MAX_FIELD} characters")
        address[name] = value
    if not any(c.isdigit() for c in address["house_number"]):
        raise ApiError("SVC0015", "address.house_number has no number in it")
    state = address["state"].upper()
    if len(state) != 2 or state not in STATES:
        raise ApiError("SVC0017", f"address.state {address['state']!r} (a 2-letter code, e.g. WA)")
    address["state"] = state
    if len(address["zip"]) != 5 or not address["zip"].isdigit():
        raise ApiError("SVC0018", f"address.zip {address['zip']!r} (5 digits)")
    return address


def parse_confirmed(raw: Any) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ApiError("SVC0002", "is_confirmed (true or false)")


async def post_e911ids(request: web.Request) -> web.Response:
    limit(request, "e911")
    gateway = gw(request)
    body = await json_body(request)
    raw_token = body.get("token")
    if raw_token is not None and not isinstance(raw_token, str):
        raise ApiError("SVC0002", "token (the access token, a string)")
    if raw_token is None:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            raw_token = header[7:].strip()
        else:
            raise AuthError("missing token: send {token: <access_token>} in the body")
    token = gateway.tokens.check(raw_token)
    if not token.has_scope(E911_SCOPE) or token.app_scope not in CREATORS:
        raise ApiError(
            "POL1009",
            f"EMERGENCYSERVICES: only mobile-number and virtual-number users may create "
            f"E911 ids (this token is {token.app_scope.value})",
        )
    address = validate_address(body.get("address"))
    confirmed = parse_confirmed(body.get("is_confirmed"))
    if confirmed:
        creator = token.user_id or f"app:{token.app_scope.value}"
        record = E911Record(secrets.token_hex(16), address, True, creator, gateway.clock.time())
        await gateway.store.add_e911(record)
    else:
        known = await gateway.store.find_e911(address)
        if known is None:
            raise ApiError(
                "SVC0016", "this address is not known: confirm it and send is_confirmed true"
            )
        record = known
    return web.json_response(
        {
            "e911Locations": {
                "addressIdentifier": record.id,
                "status": "200",
                "address": record.address,
                "is_confirmed": record.confirmed,
            }
        }
    )


async def e911_for_session(gateway: Gateway, token: Token, e911_id: str | None) -> str | None:
    """The E911 id a session of this token carries (None for account-id users)."""
    if token.app_scope not in TELEPHONE_USERS:
        return None
    if not e911_id:
        if gateway.settings.e911_required:
            raise ApiError(
                "SVC8511", "mobile-number and virtual-number users: send x-e911Id from /e911ids"
            )
        return None
    if await gateway.store.get_e911(e911_id) is None:
        raise ApiError(
            "SVC8511", f"this user (e911Id {e911_id!r} is unknown: create one with POST /e911ids)"
        )
    return e911_id


def add_routes(app: web.Application) -> None:
    app.router.add_post("/e911ids", post_e911ids)

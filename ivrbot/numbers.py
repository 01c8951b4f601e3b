"""Phone-number utilities of docs/spec/phone-api.md, and identity <-> URI rules of the gateway.

The three spec utilities raise :class:`TypeError` for a non-string and :class:`ValueError`
for a string they cannot work with; :class:`ivrbot.phone.phone.Phone` turns those into the
spec's ``error`` events (3810, 3820, 3830).
"""

from __future__ import annotations

import re

SPECIAL_NUMBERS = {"911", "411", "611", "*69", "#89"}
_KEYS = ["abc", "def", "ghi", "jkl", "mno", "pqrs", "tuv", "wxyz"]
_KEYPAD = {c: d for d, letters in zip("23456789", _KEYS, strict=True) for c in letters}


def _require_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    return value


def clean_phone_number(number: str) -> str:
    """Digits of a dialled number: '+1 (123) 123 1234' -> '11231231234'.

    Input with '@' comes back unchanged; whitespace is dropped; the special numbers (911,
    411, 611, *69, #89) come back as they are; otherwise digits are kept, letters map by
    the keypad ('1800CALFEDX' -> '18002253339') and every other character is dropped.
    """
    _require_str(number, "a phone number")
    if "@" in number:
        return number
    number = re.sub(r"\s+", "", number)
    if number in SPECIAL_NUMBERS:
        return number
    out = []
    for ch in number.lower():
        if ch.isascii() and ch.isdigit():
            out.append(ch)
        elif ch in _KEYPAD:
            out.append(_KEYPAD[ch])
    return "".join(out)


def format_number(number: str) -> str:
    """'18002253339' -> '+1 (800) 225-3339'; 10 or fewer characters come back cleaned.

    A user@domain address comes back unchanged; input with nothing to dial in it (no digit,
    letter or special number) is a ValueError.
    """
    cleaned = clean_phone_number(number)
    if "@" in cleaned:
        return cleaned
    if not cleaned:
        raise ValueError(f"{number!r} has no digits to format")
    if len(cleaned) <= 10:
        return cleaned
    national = cleaned[-10:]
    country = cleaned[:-10]
    return f"+{country} ({national[:3]}) {national[3:6]}-{national[6:]}"


def get_caller_info(uri: str | None) -> dict[str, str] | None:
    """A caller URI taken apart; None when there is none.

    'sip:+1111@icmn.api.att.com' -> {'protocol': 'sip', 'port': '', 'callerId': '+1111',
    'domain': 'icmn.api.att.com'}. Parameters after ';' become keys of their own
    ('sip:bob@x:5060;transport=udp' adds 'transport': 'udp' and port '5060').
    """
    if uri is None:
        return None
    _require_str(uri, "a caller URI")
    uri = uri.strip()
    if not uri:
        return None
    head, *params = uri.split(";")
    info: dict[str, str] = {}
    for param in params:
        key, _, value = param.partition("=")
        if key.strip():
            info[key.strip()] = value.strip()
    parts = head.split(":")
    if len(parts) > 3:
        raise ValueError(f"{uri!r} is not a caller URI (protocol:user@domain[:port])")
    if len(parts) == 1:
        protocol, rest, port = "", parts[0], ""
    else:
        protocol, rest, port = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    caller_id, _, domain = rest.partition("@")
    info.update(protocol=protocol, port=port, callerId=caller_id, domain=domain)
    return info


def called_party_uri(destination: str, domain: str) -> str | None:
    """Destination -> called-party URI, or None when it is not callable.

    10 digits -> tel:+<10 digits>; digits starting with 1 -> tel:+<digits>; other all-digit
    numbers (911) -> sip:<n>@<domain>; contains '@' -> sip:<destination>.
    """
    if "@" in destination:
        return f"sip:{destination}"
    digits = clean_phone_number(destination)
    if not digits or not digits.isdigit():
        return None
    if len(digits) == 10 or digits.startswith("1"):
        return f"tel:+{digits}"
    return f"sip:{digits}@{domain}"


def identity_candidates(uri: str) -> list[str]:
    """User ids a called-party URI may reach: 'tel:+15550001000' -> vtn:5550001000, ..."""
    if uri.startswith("sip:"):
        return [uri[4:]]
    if uri.startswith("tel:"):
        digits = re.sub(r"\D", "", uri[4:])
        national = digits[1:] if len(digits) == 11 and digits.startswith("1") else digits
        return [f"vtn:{national}", national, digits]
    return []


def identity_uri(user_id: str) -> str:
    """How an identity appears to the other party: vtn:5550001000 -> tel:+15550001000."""
    if user_id.startswith("vtn:"):
        return f"tel:+1{user_id[4:]}"
    if "@" in user_id:
        return f"sip:{user_id}"
    return f"tel:+{user_id}"


def virtual_number_user_id(number: str) -> str:
    """'+1 555 000 1000' -> 'vtn:5550001000' (leading 1 stripped, 10 digits)."""
    digits = clean_phone_number(number)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) != 10 or not digits.isdigit():
        raise ValueError(
            f"a virtual number has 10 digits (optionally after a leading 1), got {number!r}"
        )
    return f"vtn:{digits}"


def e164(party: str) -> str:
    """A party as data (records, APIs, CSV, webhooks, log lines): a phone number in E.164,
    an address without its scheme. 'tel:+15550001000', 'tel:+5550001000' (the wire's
    10-digit form), 'vtn:5550001000' and '(555) 000-1000' -> '+15550001000';
    'sip:pat@ivrbot.local' -> 'pat@ivrbot.local'; short numbers ('911') stay as they are.

    Ten digits are a North American number (ivrbot's numbering, as :func:`called_party_uri`
    and :func:`identity_candidates` read them)."""
    bare = party.strip().split(";", 1)[0]
    scheme, colon, rest = bare.partition(":")
    if colon and scheme.lower() in ("tel", "vtn", "sip", "sips"):
        bare = rest
    user = bare.partition("@")[0]
    if not _looks_like_number(user):
        return bare  # a user@domain address, a name
    digits = re.sub(r"\D", "", user)
    if len(digits) == 10:
        return f"+1{digits}"
    if len(digits) > 10 or user.startswith("+"):
        return f"+{digits}"
    return digits  # 911, 611, an extension


def shown(party: str) -> str:
    """A party as people read it (screens: CLI tables, timelines; the dashboard and the
    softphone do the same in JavaScript, softphone_extras.js shown()): a phone number in
    the README's format '+1 (555) 000-1010' (other countries' numbers in E.164), an
    address without its scheme."""
    value = e164(party)
    if value.startswith("+1") and len(value) == 12:
        return format_number(value)
    return value


def _looks_like_number(text: str) -> bool:
    """Digits, with the punctuation people write numbers with (+, spaces, dashes, dots,
    parentheses)."""
    return (
        bool(text)
        and re.fullmatch(r"\+?[\d\s().-]+", text) is not None
        and any(c.isdigit() for c in text)
    )

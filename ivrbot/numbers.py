"""Phone-number utilities of spec/phone-api.md, and identity <-> URI rules of the gateway."""

from __future__ import annotations

import re

SPECIAL_NUMBERS = {"911", "411", "611", "*69", "#89"}
_KEYS = ["abc", "def", "ghi", "jkl", "mno", "pqrs", "tuv", "wxyz"]
_KEYPAD = {c: d for d, letters in zip("23456789", _KEYS, strict=True) for c in letters}


def clean_phone_number(number: str) -> str:
    """Digits of a dialled number: '+1 (123) 123 1234' -> '11231231234'."""
    if "@" in number:
        return number
    number = re.sub(r"\s+", "", number)
    if number in SPECIAL_NUMBERS:
        return number
    out = []
    for ch in number.lower():
        if ch.isdigit():
            out.append(ch)
        elif ch in _KEYPAD:
            out.append(_KEYPAD[ch])
    return "".join(out)


def format_number(number: str) -> str:
    """'18002253339' -> '+1 (800) 225-3339'; 10 or fewer characters come back cleaned."""
    cleaned = clean_phone_number(number)
    if len(cleaned) <= 10:
        return cleaned
    national = cleaned[-10:]
    country = cleaned[:-10]
    return f"+{country} ({national[:3]}) {national[3:6]}-{national[6:]}"


def called_party_uri(destination: str, domain: str) -> str | None:
    """Destination -> called-party URI, or None when it is not callable."""
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

"""Phone-number utilities: every example of spec/phone-api.md, and the Phone's error codes."""

from __future__ import annotations

from typing import Any

import pytest

from ivrbot.errors import PhoneError, PhoneException
from ivrbot.numbers import called_party_uri, clean_phone_number, format_number, get_caller_info
from ivrbot.phone.phone import Phone

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("number", "cleaned"),
    [
        ("+1 (123) 123 1234", "11231231234"),
        ("1800CALFEDX", "18002253339"),
        ("425-080-FEDX", "4250803339"),
        ("1800calfedx", "18002253339"),  # letters map whatever their case
        ("911", "911"),
        ("411", "411"),
        ("611", "611"),
        ("*69", "*69"),
        ("#89", "#89"),
        (" 9 1 1 ", "911"),  # whitespace is dropped before the special-number check
        ("*6 9", "*69"),
        ("bob@example.com", "bob@example.com"),
        ("Bob Smith@example.com", "Bob Smith@example.com"),  # '@': unchanged, spaces too
        ("*70", "70"),  # not special: other characters are dropped
        ("5.5.5-0001000", "5550001000"),
        ("", ""),
    ],
)
def test_clean_phone_number(number: str, cleaned: str) -> None:
    assert clean_phone_number(number) == cleaned


def test_keypad_letters() -> None:
    assert clean_phone_number("abcdefghijklmnopqrstuvwxyz") == "22233344455566677778889999"


@pytest.mark.parametrize(
    ("number", "formatted"),
    [
        ("18002253339", "+1 (800) 225-3339"),
        ("1800CALFEDX", "+1 (800) 225-3339"),
        ("+1 (800) 225 3339", "+1 (800) 225-3339"),
        ("+1 (123) 123 1234", "+1 (123) 123-1234"),
        ("425-080-FEDX", "4250803339"),  # 10 characters: cleaned only
        ("(800) 225-3339", "8002253339"),
        ("911", "911"),
        ("*69", "*69"),
        ("#89", "#89"),
        ("bob@example.com", "bob@example.com"),
        ("441234567890", "+44 (123) 456-7890"),
    ],
)
def test_format_number(number: str, formatted: str) -> None:
    assert format_number(number) == formatted


@pytest.mark.parametrize(
    ("uri", "info"),
    [
        (
            "sip:+1111@icmn.api.att.com",
            {"protocol": "sip", "port": "", "callerId": "+1111", "domain": "icmn.api.att.com"},
        ),
        (
            "tel:+14250001111",
            {"protocol": "tel", "port": "", "callerId": "+14250001111", "domain": ""},
        ),
        (
            "sip:alice@ivrbot.local:5060;transport=udp;user=phone",
            {
                "protocol": "sip",
                "port": "5060",
                "callerId": "alice",
                "domain": "ivrbot.local",
                "transport": "udp",
                "user": "phone",
            },
        ),
        (
            "sip:5550001000@ivrbot.local;lr",
            {
                "protocol": "sip",
                "port": "",
                "callerId": "5550001000",
                "domain": "ivrbot.local",
                "lr": "",
            },
        ),
    ],
)
def test_get_caller_info(uri: str, info: dict[str, str]) -> None:
    assert get_caller_info(uri) == info


@pytest.mark.parametrize("missing", [None, "", "   "])
def test_get_caller_info_of_nothing_is_none(missing: str | None) -> None:
    assert get_caller_info(missing) is None


@pytest.mark.parametrize(
    ("destination", "uri"),
    [
        ("5550001000", "tel:+5550001000"),  # 10 digits
        ("555 000 1000", "tel:+5550001000"),
        ("15550001000", "tel:+15550001000"),  # digits starting with 1
        ("1800CALFEDX", "tel:+18002253339"),
        ("+1 (123) 123 1234", "tel:+11231231234"),
        ("911", "sip:911@ivrbot.local"),  # other all-digit numbers
        ("4111", "sip:4111@ivrbot.local"),
        ("bob@example.com", "sip:bob@example.com"),  # contains '@'
        ("*69", None),  # anything else is not callable
        ("#89", None),
        ("()-", None),
        ("", None),
    ],
)
def test_called_party_uri(destination: str, uri: str | None) -> None:
    assert called_party_uri(destination, "ivrbot.local") == uri


def test_module_functions_reject_what_is_not_a_string() -> None:
    with pytest.raises(TypeError):
        clean_phone_number(5550001000)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_number(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        format_number("()-")
    with pytest.raises(TypeError):
        get_caller_info(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        get_caller_info("sip:a@b:1:2")


def test_phone_methods_give_the_same_answers() -> None:
    phone = Phone("http://127.0.0.1:9")  # no request is made
    assert phone.clean_phone_number("1800CALFEDX") == "18002253339"
    assert phone.clean_phone_number("*69") == "*69"
    assert phone.format_number("1800CALFEDX") == "+1 (800) 225-3339"
    assert phone.format_number("425-080-FEDX") == "4250803339"
    assert phone.get_caller_info("tel:+14250001111") == {
        "protocol": "tel",
        "port": "",
        "callerId": "+14250001111",
        "domain": "",
    }
    assert phone.get_caller_info(None) is None


@pytest.mark.parametrize(
    ("method", "argument", "code"),
    [
        ("clean_phone_number", 5550001000, "3810"),
        ("clean_phone_number", None, "3810"),
        ("format_number", 18002253339, "3820"),
        ("format_number", "()-", "3820"),
        ("get_caller_info", ["sip:a@b"], "3830"),
        ("get_caller_info", "sip:a@b:1:2", "3830"),
    ],
)
def test_phone_methods_publish_error_on_bad_input(method: str, argument: Any, code: str) -> None:
    phone = Phone("http://127.0.0.1:9")
    errors: list[PhoneError] = []
    phone.on("error", errors.append)
    with pytest.raises(PhoneException) as info:
        getattr(phone, method)(argument)
    assert info.value.error.error_code == code
    assert [e.error_code for e in errors] == [code]
    assert errors[0].js_method == method
    assert errors[0].to_dict()["ErrorCode"] == code

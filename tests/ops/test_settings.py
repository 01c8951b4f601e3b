"""Every IVRBOT_ setting is parsed by type: a bad value is a ConfigError naming the
variable and the form it takes (pure logic: no server)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from ivrbot import config
from ivrbot.config import ConfigError, Settings

pytestmark = pytest.mark.unit

ENV_TYPES = Settings.env_types()
TYPED = sorted(name for name, kind in ENV_TYPES.items() if kind in ("int", "float", "bool"))


def test_the_typed_settings_are_all_known() -> None:
    assert {"PORT", "MAX_CALLS", "RING_TIMEOUT", "LOCAL_BOTS", "ACCESS_LOG"} <= set(TYPED)
    assert ENV_TYPES["PORT"] == "int" and ENV_TYPES["LOCAL_BOTS"] == "bool"
    assert Settings.env_types() == ENV_TYPES  # asked again: the same, nothing kept between


def test_settings_never_change_once_made() -> None:
    """A running gateway's settings cannot be changed under it: an override makes new
    settings (dataclasses.replace) before the gateway is built."""
    settings = Settings(port=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 8890  # type: ignore[misc]
    moved = dataclasses.replace(settings, port=8891)
    assert (moved.port, settings.port) == (8891, 0)
    given = Settings(api_keys=["k" * 16])  # a list given is kept as a tuple: no append either
    assert given.api_keys == ("k" * 16,) and isinstance(settings.virtual_numbers, tuple)


@pytest.mark.parametrize("name", TYPED)
def test_a_word_where_a_number_or_switch_belongs_names_the_variable(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"IVRBOT_{name}", "abc")
    with pytest.raises(ConfigError) as caught:
        Settings()
    message = str(caught.value)
    assert message.startswith(f"IVRBOT_{name}='abc' is not valid: ")
    form = {"int": "whole number", "float": "number", "bool": "1 or 0"}[ENV_TYPES[name]]
    assert form in message and "\n" not in message


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("PORT", "70000", "from 0 to 65535"),
        ("MAX_CALLS", "-1", "from 0 up"),
        ("RING_TIMEOUT", "-3", "from 0 up"),
        ("QUEUE_TIMEOUT", "nan", "from 0 up"),
        ("VIRTUAL_NUMBERS", "555-abc", "numbers and ranges"),
    ],
)
def test_out_of_range_values_name_the_range(
    name: str, value: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"IVRBOT_{name}", value)
    with pytest.raises(ConfigError, match=re.escape(f"IVRBOT_{name}={value!r}")) as caught:
        Settings()
    assert words in str(caught.value)


def test_good_values_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"PORT": " 9000 ", "LOCAL_BOTS": "off", "ACCESS_LOG": "Yes",
                        "RING_TIMEOUT": "2.5", "VIRTUAL_NUMBERS": "5550002000-5550002001,5"}.items():  # fmt: skip
        monkeypatch.setenv(f"IVRBOT_{name}", value)
    s = Settings()
    assert (s.port, s.local_bots, s.access_log, s.ring_timeout_s) == (9000, False, True, 2.5)
    assert s.virtual_numbers == ("5550002000", "5550002001", "5")


def test_no_setting_is_read_around_the_typed_helpers() -> None:
    """A setting added with int(_env(...)) would give a traceback for a bad value again."""
    source = Path(config.__file__).read_text()
    assert not re.search(r"\b(int|float)\(\s*_env\(", source)
    assert not re.search(r"_env\([^)]*\)\s*(==|in\b|\.lower\(\) in)", source)

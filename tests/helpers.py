"""Small helpers shared by tests of every part (audio measures: ivrbot/testing/audio.py; talking to
a gateway over HTTP: gateway/wire.py)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ivrbot.errors import PhoneException


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 (for a server the test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def code_of(coro: Awaitable[Any]) -> str:
    """The Phone error code a method fails with (it must fail)."""
    with pytest.raises(PhoneException) as info:
        await coro
    return info.value.error.error_code


def sync_code_of(fn: Callable[[], Any]) -> str:
    with pytest.raises(PhoneException) as info:
        fn()
    return info.value.error.error_code

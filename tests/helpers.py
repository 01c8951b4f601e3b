"""Small helpers shared by tests of every part (audio measures: ivrbot/testing/audio.py; talking to
a gateway over HTTP: gateway/wire.py)."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from ivrbot.errors import PhoneException

ROOT = Path(__file__).resolve().parents[1]


async def run_ivrbot(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 90
) -> tuple[int, str, str]:
    """``python -m ivrbot ARGS`` as a user runs it, from the repository's top (``env``: the
    whole environment, None: this one); its exit status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivrbot", *args, cwd=ROOT, env=None if env is None else dict(env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


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

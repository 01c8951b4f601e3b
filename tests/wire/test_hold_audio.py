"""What a bot hears while a call is held: a session that says ``x-ivrbot-hold-audio: silence``
(every bot's Phone does) is sent silence, not music on hold, and is told when its far end
holds and resumes; a person still hears music on hold. Measured on the audio each party
receives over real legs (a remote Phone over WebRTC, or a Phone in the gateway's process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ivrbot.media.frames import rms_dbfs
from ivrbot.media.tones import HOLD_NOTES_HZ
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_local import LocalTransport
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.wire.in_process import InProcessWire
from ivrbot.wire.server import GatewayServer
from tests.wire.test_calls import Party, login

ALICE_HZ = 700.0
HEARD_DB = -32.0
SILENT_DB = -55.0


class BotParty(Party):
    """A Party whose Phone says what a bot says: silence on hold."""

    def __init__(self, url: str, local: InProcessWire | None) -> None:
        super().__init__(url, "bot", local)
        transport = LocalTransport(local) if local is not None else None
        self.phone = Phone(url, name="bot", transport=transport, hold_audio="silence")
        for event in ("call:incoming", "call:connected", "call:remote-held",
                      "call:remote-resumed", "call:disconnected"):  # fmt: skip
            self.phone.on(event, self._record(event))


def music_db(party: Party) -> float:
    pcm = party.recent_audio(0.8)
    return max(tone_dbfs(pcm, f) for f in HOLD_NOTES_HZ[:3])


@pytest.fixture(params=["webrtc", "local"])
async def alice_and_bot(
    gateway: GatewayServer, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Party, BotParty]]:
    url = gateway.url
    alice, bot = (
        Party(url, "alice"),
        BotParty(url, gateway.gateway.in_process if request.param == "local" else None),
    )
    await login(alice, url, "ACCOUNT_ID", "alice@ivrbot.local")
    await login(bot, url, "VIRTUAL_NUMBER", "vtn:5550001000")
    yield alice, bot
    await alice.phone.close()
    await bot.phone.close()


async def connected(alice: Party, bot: Party) -> None:
    call = await alice.phone.dial("5550001000", remote_media=alice.hear)
    await bot.wait("call:incoming")
    await bot.phone.answer(remote_media=bot.hear)
    await alice.wait("call:connected")
    await bot.wait("call:connected")
    call.play(sine(ALICE_HZ, 60.0, dbfs=-12.0))


@pytest.mark.e2e
async def test_a_bot_whose_caller_holds_hears_silence_and_is_told(
    alice_and_bot: tuple[Party, BotParty],
) -> None:
    alice, bot = alice_and_bot
    await connected(alice, bot)
    await asyncio.sleep(1.0)
    assert tone_dbfs(bot.recent_audio(0.8), ALICE_HZ) > HEARD_DB

    await alice.phone.hold()
    held: list[Any] = await bot.wait("call:remote-held")
    assert held[0].index == bot.phone.calls[0].index and bot.phone.calls[0].remote_held
    await asyncio.sleep(1.2)
    heard = bot.recent_audio(0.8)
    assert heard.size > 0.7 * 48000, "the held bot received no frames"
    assert rms_dbfs(heard) < SILENT_DB, f"the held bot heard {rms_dbfs(heard):.1f} dBFS"
    assert music_db(bot) < SILENT_DB

    await alice.phone.resume()
    await bot.wait("call:remote-resumed")
    assert not bot.phone.calls[0].remote_held
    await asyncio.sleep(1.0)
    assert tone_dbfs(bot.recent_audio(0.8), ALICE_HZ) > HEARD_DB


@pytest.mark.e2e
async def test_a_person_held_by_a_bot_still_hears_music(
    alice_and_bot: tuple[Party, BotParty],
) -> None:
    """The bot holds (a Transfer step does): the person hears music on hold as before, and
    a person's Phone, which said nothing of its hold audio, is told nothing new."""
    alice, bot = alice_and_bot
    await connected(alice, bot)
    await bot.phone.hold()
    await asyncio.sleep(1.2)
    assert music_db(alice) > HEARD_DB
    assert rms_dbfs(bot.recent_audio(0.8)) < SILENT_DB  # the holder hears nothing
    await bot.phone.resume()
    await asyncio.sleep(1.0)
    assert music_db(alice) < SILENT_DB
    assert not alice.phone.calls[0].remote_held
    assert "call:remote-held" not in bot.events  # the bot's own hold is call:held


@pytest.mark.contract
async def test_an_unknown_hold_audio_is_refused_in_one_line(gateway: GatewayServer) -> None:
    token = await fetch_token(gateway.url, "ACCOUNT_ID")
    headers = {"Authorization": f"Bearer {token}", "x-ivrbot-hold-audio": "jazz"}
    async with aiohttp.ClientSession() as http:
        await http.put(
            f"{gateway.url}/RTC/v1/userIds/carol@ivrbot.local",
            headers={"Authorization": f"Bearer {token}"},
        )
        resp = await http.post(
            f"{gateway.url}/RTC/v1/sessions", json={"session": {}}, headers=headers
        )
        body = await resp.json()
    assert resp.status == 400
    error = body["RequestError"]["ServiceException"]
    assert error["MessageId"] == "SVC0002"
    assert "x-ivrbot-hold-audio" in str(error["Variables"])
    with pytest.raises(ValueError, match="hold_audio"):
        Phone(gateway.url, hold_audio="jazz")

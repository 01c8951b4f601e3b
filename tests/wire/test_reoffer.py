"""The gateway's own offer on a live leg (the far side asks for a media change): it keeps
what the leg negotiated (RFC 3264 section 8) and media goes on both ways. Real aiortc peers
on 127.0.0.1; audio is measured (Goertzel) on both sides.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import av
import numpy as np
import pytest
from aiortc import RTCSessionDescription, sdp

from ivrbot.core.endpoints import media_up
from ivrbot.endpoints.webrtc.leg import Leg
from ivrbot.endpoints.webrtc.peer import new_peer_connection
from ivrbot.endpoints.webrtc.reoffer import next_origin
from ivrbot.media.frames import pcm_from_frame
from ivrbot.media.tracks import OutboundAudio, pump
from ivrbot.testing.audio import sine, tone_dbfs
from tests.wire.test_calls import Party, connect

HEARD_DB = -25.0
SILENT_DB = -50.0


def chromium_numbering(offer: str) -> str:
    """An aiortc offer renumbered the way Chromium numbers its own: opus 111, the mid
    header extension 4 and the audio level 1 (aiortc's are 96, 1 and 2)."""
    offer = re.sub(r"^(m=audio \S+ \S+) 96 ", r"\1 111 ", offer, flags=re.M)
    offer = offer.replace("a=rtpmap:96 opus", "a=rtpmap:111 opus")
    offer = offer.replace("a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid", "a=extmap:4 MID")
    offer = offer.replace(
        "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level", "a=extmap:1 LVL"
    )
    offer = offer.replace("a=extmap:4 MID", "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid")
    return offer.replace("a=extmap:1 LVL", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level")


def numbering(text: str) -> dict[str, Any]:
    """What a re-offer must keep, from an SDP."""
    description = sdp.SessionDescription.parse(text)
    media = description.media[0]
    session_id, version = (description.origin or "").split()[1:3]
    return {
        "session": session_id,
        "version": int(version),
        "mid": media.rtp.muxId,
        "codecs": {c.payloadType: c.mimeType.lower() for c in media.rtp.codecs},
        "extensions": {x.id: x.uri for x in media.rtp.headerExtensions},
        "ice": (media.ice.usernameFragment, media.ice.password),
        "fingerprints": {f.value for f in media.dtls.fingerprints},
        "setup": media.dtls.role,
    }


class Heard:
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def __call__(self, frame: av.AudioFrame) -> None:
        self.frames.append(pcm_from_frame(frame))

    async def level(self, freq: float, seconds: float = 0.6) -> float:
        mark = len(self.frames)
        await asyncio.sleep(seconds)
        got = self.frames[mark:]
        return tone_dbfs(np.concatenate(got), freq) if got else -120.0


async def until_heard(what: str, heard: Heard, freq: float, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while (db := await heard.level(freq)) < HEARD_DB:
            print(f"{what}: {db:.1f} dBFS")


@pytest.mark.e2e
async def test_reoffer_keeps_the_numbering_an_endpoint_offered() -> None:
    """A leg answered an offer numbered as Chromium numbers it; the leg's own new offer keeps
    that numbering, its origin, ICE credentials, fingerprints and DTLS role, and audio goes
    on both ways once the endpoint has answered it."""
    endpoint, leg = new_peer_connection(), Leg("test")
    mic, at_endpoint, at_leg = OutboundAudio(), Heard(), Heard()
    pumps: list[asyncio.Task[None]] = []
    endpoint.addTrack(mic)
    endpoint.on("track", lambda track: pumps.append(asyncio.create_task(pump(track, at_endpoint))))
    try:
        offer = chromium_numbering((await endpoint.createOffer()).sdp)
        await endpoint.setLocalDescription(RTCSessionDescription(sdp=offer, type="offer"))
        answer = await leg.answer_offer(endpoint.localDescription.sdp)
        await endpoint.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        assert await media_up(leg, 10)
        leg.on_frame = at_leg
        mic.play(sine(600, 60.0), loop=True)
        leg.out.play(sine(1000, 60.0), loop=True)
        await until_heard("the leg hears the endpoint", at_leg, 600)
        await until_heard("the endpoint hears the leg", at_endpoint, 1000)

        reoffer = await leg.reoffer()
        before, after = numbering(answer), numbering(reoffer)
        assert after["codecs"][111] == "audio/opus" and 96 not in after["codecs"]
        assert after["extensions"] == {
            4: "urn:ietf:params:rtp-hdrext:sdes:mid",
            1: "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        }
        assert after["setup"] == before["setup"] == "client"  # a=setup:active, as answered
        assert after["version"] == before["version"] + 1
        for kept in ("session", "mid", "codecs", "extensions", "ice", "fingerprints"):
            assert after[kept] == before[kept], kept

        await endpoint.setRemoteDescription(RTCSessionDescription(sdp=reoffer, type="offer"))
        await endpoint.setLocalDescription(await endpoint.createAnswer())
        await leg.accept_answer(endpoint.localDescription.sdp)
        assert numbering(endpoint.localDescription.sdp)["codecs"] == before["codecs"]
        await until_heard("re-offered: the leg hears the endpoint", at_leg, 600)
        await until_heard("re-offered: the endpoint hears the leg", at_endpoint, 1000)
    finally:
        for task in pumps:
            task.cancel()
        await leg.close()
        await endpoint.close()


async def levels(party: Party, seconds: float = 0.8) -> tuple[float, float]:
    """The levels of 440 Hz and 1000 Hz in what ``party`` hears over the next ``seconds``."""
    mark = len(party.heard)
    await asyncio.sleep(seconds)
    frames = party.heard[mark:]
    pcm = np.concatenate(frames) if frames else np.zeros(0, np.int16)
    return tone_dbfs(pcm, 440), tone_dbfs(pcm, 1000)


async def both_hear(alice: Party, bot: Party, when: str) -> None:
    async with asyncio.timeout(15):  # a loaded machine starts media late
        while True:
            (_, a_hears_bot), (b_hears_alice, _) = await levels(alice), await levels(bot)
            if a_hears_bot > HEARD_DB and b_hears_alice > HEARD_DB:
                return
            print(f"{when}: alice hears {a_hears_bot:.1f}, the bot {b_hears_alice:.1f} dBFS")


async def change(asker: Party, method: str, answerer: Party, to: str) -> None:
    """``asker`` asks for a media change, ``answerer`` (re-offered by the gateway) accepts."""
    offered = len(answerer.events.get("call:modification-in-progress", [])) + 1
    settled = len(asker.events.get("call:media-modification", [])) + 1
    await getattr(asker.phone, method)()
    await answerer.wait("call:modification-in-progress", offered)
    await answerer.phone.accept_modification()
    done = await asker.wait("call:media-modification", settled)
    assert done[-1].get("newMediaType") == to
    assert answerer.phone.get_media_type() == to


@pytest.mark.e2e
async def test_media_changes_both_ways_keep_audio_and_keys(pair: Any) -> None:
    """Phone to Phone through the gateway: the bot upgrades (the gateway re-offers alice's
    leg, which alice offered), alice downgrades (it re-offers the bot's leg, which it
    offered); after each, both hear each other, and RFC 4733 keys still go both ways."""
    alice, bot = pair
    out, inc = await connect(alice, bot)
    out.play(sine(440, 60.0))
    inc.play(sine(1000, 60.0))
    await both_hear(alice, bot, "connected")

    await change(bot, "upgrade", alice, "video")
    await both_hear(alice, bot, "upgraded by the bot")
    await change(alice, "downgrade", bot, "audio")
    await both_hear(alice, bot, "downgraded by alice")

    await alice.phone.send_dtmf_tone(input="5#")
    received = await bot.wait("dtmf:tone-received", 2)
    assert [e.get("tone") for e in received] == ["5", "#"]
    await bot.phone.send_dtmf_tone(input="7")
    back = await alice.wait("dtmf:tone-received")
    assert [e.get("tone") for e in back] == ["7"]


@pytest.mark.unit
def test_next_origin_keeps_the_session_and_raises_its_version() -> None:
    fresh = "- 99 99 IN IP4 0.0.0.0"
    assert next_origin("- 4005254899 4005254899 IN IP4 127.0.0.1", fresh) == (
        "- 4005254899 4005254900 IN IP4 127.0.0.1"
    )
    assert next_origin(None, fresh) == fresh  # no previous description
    assert next_origin("garbage", fresh) == fresh

"""Merging calls into a conference (x-calls-action: initiate-call-merge, Phone.merge_call).

Real Phones on 127.0.0.1, each sending its own tone: the host (a session of bob hosting a
conference), the agent (another session of bob, answering calls) and two callers. After
each step the test measures who hears whom (Goertzel levels, tests/wire/test_conferences).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ivrbot.errors import PhoneException
from ivrbot.phone.call import CallState
from ivrbot.wire.server import GatewayServer
from tests.wire.test_conferences import Member, hears, start, tone

pytestmark = pytest.mark.e2e

FREQS = {"host": 600.0, "agent": 1400.0, "alice": 900.0, "carol": 2000.0}
USERS = {
    "host": "bob@ivrbot.local",
    "agent": "bob@ivrbot.local",
    "alice": "alice@ivrbot.local",
    "carol": "carol@ivrbot.local",
}
ALICE, CAROL = "sip:alice@ivrbot.local", "sip:carol@ivrbot.local"


@pytest.fixture
async def quad(gateway: GatewayServer) -> AsyncIterator[tuple[Member, Member, Member, Member]]:
    from ivrbot.phone.transport_remote import fetch_token

    members = [Member(gateway.url, name, freq) for name, freq in FREQS.items()]
    for m in members:
        tone(m.freq)
        m.phone.on("call:connected", m._speak)
        await m.phone.login(
            token=await fetch_token(gateway.url, "ACCOUNT_ID"), user_id=USERS[m.name]
        )
    yield members[0], members[1], members[2], members[3]
    for m in members:
        await m.phone.close()


async def listen(parties: list[Member]) -> dict[str, set[str]]:
    return await hears(parties, freqs=FREQS)


async def agent_answers(caller: Member, agent: Member) -> None:
    """``caller`` dials bob; the agent's session answers (the host's stops ringing)."""
    connected, rang = agent.count("call:connected"), agent.count("call:incoming")
    await caller.phone.dial("bob@ivrbot.local", remote_media=caller.hear)
    await agent.wait("call:incoming", rang + 1)
    await agent.phone.answer(remote_media=agent.hear)
    await agent.wait("call:connected", connected + 1)
    await caller.wait("call:connected", 1)


async def test_callers_merged_into_a_conference_hear_the_host_and_each_other(
    quad: tuple[Member, Member, Member, Member], gateway: GatewayServer
) -> None:
    host, agent, alice, carol = quad
    conf = await start(host)
    await agent_answers(alice, agent)
    assert await listen([alice, agent]) == {"alice": {"agent"}, "agent": {"alice"}}

    await agent.phone.merge_call(conf.id)
    (ended,) = await agent.wait("call:disconnected")
    assert ended.get("message") == "Call merged into a conference"
    await host.wait("conference:invitation-accepted")
    assert await listen([host, agent, alice]) == {
        "host": {"alice"},
        "agent": set(),
        "alice": {"host"},
    }
    assert alice.phone.current_call is not None
    assert alice.phone.current_call.state == CallState.CONNECTED  # her call goes on as it was

    await agent_answers(carol, agent)
    await agent.phone.merge_call(conf.id)
    await host.wait("conference:invitation-accepted", 2)
    assert await listen([host, agent, alice, carol]) == {
        "host": {"alice", "carol"},
        "agent": set(),
        "alice": {"host", "carol"},
        "carol": {"host", "alice"},
    }
    assert host.phone.get_participants() == {
        ALICE: {"participant": ALICE, "status": "joined"},
        CAROL: {"participant": CAROL, "status": "joined"},
    }

    await alice.phone.hangup()  # she leaves the conference; the others carry on
    (removed,) = await host.wait("conference:participant-removed")
    assert removed.get("participant") == ALICE
    assert await listen([host, alice, carol]) == {
        "host": {"carol"},
        "alice": set(),
        "carol": {"host"},
    }

    await host.phone.remove_participant(CAROL)
    (ended,) = await carol.wait("call:disconnected")
    assert ended.get("message") == "Removed from conference"
    assert await listen([host, carol]) == {"host": set(), "carol": set()}
    assert gateway.gateway.switch.calls == {}
    assert not carol.phone.calls and not alice.phone.calls


async def test_a_bot_that_stays_is_heard_until_it_leaves_and_hold_leaves_the_mix(
    quad: tuple[Member, Member, Member, Member], gateway: GatewayServer
) -> None:
    host, agent, alice, _ = quad
    conf = await start(host)
    await agent_answers(alice, agent)
    await agent.phone.merge_call(conf.id, stay=True)
    await host.wait("conference:invitation-accepted", 2)
    everyone = {"host": {"agent", "alice"}, "agent": {"host", "alice"}, "alice": {"host", "agent"}}
    assert await listen([host, agent, alice]) == everyone
    bob = "sip:bob@ivrbot.local"  # the agent is a session of the host's own identity
    assert set(host.phone.get_participants()) == {ALICE, bob}
    assert agent.count("call:disconnected") == 0
    await alice.phone.send_dtmf_tone(input="5#")  # the mix carries audio; keys still reach
    keys = await agent.wait("dtmf:tone-received", 2)  # the bot that stayed on her call
    assert [k.get("tone") for k in keys] == ["5", "#"]
    assert host.count("dtmf:tone-received") == 0

    await alice.phone.hold()
    assert await listen([host, agent, alice]) == {
        "host": {"agent"},
        "agent": {"host"},
        "alice": set(),
    }
    await alice.phone.resume()
    assert await listen([host, agent, alice]) == everyone

    await agent.phone.hangup()  # the bot leaves; the caller stays in the conference
    (removed,) = await host.wait("conference:participant-removed")
    assert removed.get("participant") == bob
    assert await listen([host, agent, alice]) == {
        "host": {"alice"},
        "agent": set(),
        "alice": {"host"},
    }
    assert alice.count("call:disconnected") == 0

    await host.phone.end_conference()
    (ended,) = await alice.wait("call:disconnected")
    assert ended.get("message") == "Conference ended"
    assert gateway.gateway.switch.calls == {}
    assert gateway.gateway.conferences.conferences == {}


async def test_merge_errors_name_what_is_wrong_and_the_call_goes_on(
    quad: tuple[Member, Member, Member, Member],
) -> None:
    host, agent, alice, _ = quad
    with pytest.raises(PhoneException) as no_call:
        await agent.phone.merge_call("abc")
    assert no_call.value.error.error_code == "3862"

    conf = await start(host)
    await agent_answers(alice, agent)
    with pytest.raises(PhoneException) as unknown:
        await agent.phone.merge_call("no-such-conference")
    assert unknown.value.error.error_code == "3860"
    assert unknown.value.error.http_status_code == 404
    with pytest.raises(PhoneException) as not_hers:  # bob's conference, alice's session
        await alice.phone.merge_call(conf.id)
    assert not_hers.value.error.http_status_code == 404
    with pytest.raises(PhoneException) as empty:
        await agent.phone.merge_call(" ")
    assert empty.value.error.error_code == "3864"

    call = agent.phone.current_call
    assert call is not None
    path = f"{agent.phone.session_path}/calls/{call.id}"
    headers = {"x-calls-action": "initiate-call-merge", "x-conferenceId": conf.id}
    bad = await agent.phone.transport.request("PUT", path, {}, {**headers, "x-merge-mode": "both"})
    assert bad.status == 400 and "x-merge-mode" in bad.text
    missing = await agent.phone.transport.request(
        "PUT", path, {}, {"x-calls-action": "initiate-call-merge"}
    )
    assert missing.status == 400 and "x-conferenceId" in missing.text
    assert await listen([agent, alice]) == {"agent": {"alice"}, "alice": {"agent"}}

    await agent.phone.merge_call(conf.id, stay=True)
    with pytest.raises(PhoneException) as twice:  # a merged call cannot be transferred or merged
        await agent.phone.merge_call(conf.id)
    assert twice.value.error.http_status_code == 409

"""RFC 4733 rules: a key's event packets when sent, one report per event when received."""

from __future__ import annotations

import pytest

from ivrbot.endpoints.rtp.packets import RtpError, TelephoneEvent
from ivrbot.endpoints.rtp.telephone_events import KeyReceiver, KeySender

pytestmark = pytest.mark.unit


def run(sender: KeySender, ticks: int, start: int = 1000) -> list[tuple[int, object]]:
    """Tick ``ticks`` times (160 samples apart); each tick's timestamp and what it sent."""
    out: list[tuple[int, object]] = []
    for k in range(ticks):
        timestamp = start + 160 * k
        out.append((timestamp, sender.tick(timestamp)))
    return out


def test_a_key_is_five_updates_then_its_end_three_times_then_a_gap() -> None:
    sender = KeySender(tone_ticks=5, gap_ticks=3)
    sender.add("1#")
    sent = run(sender, 23)
    first = [p for _, p in sent[:8]]
    events = [TelephoneEvent.unpack(p.payload) for p in first]  # type: ignore[union-attr]
    assert [e.key for e in events] == ["1"] * 8
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800, 800]
    assert [e.end for e in events] == [False] * 5 + [True] * 3
    assert {p.timestamp for p in first} == {1000}  # type: ignore[union-attr]
    assert [p.marker for p in first] == [True] + [False] * 7  # type: ignore[union-attr]
    assert [p for _, p in sent[8:11]] == [None] * 3  # audio between keys
    second = sent[11][1]
    assert TelephoneEvent.unpack(second.payload).key == "#"  # type: ignore[union-attr]
    assert second.timestamp == sent[11][0] and second.marker  # type: ignore[union-attr]
    assert [p for _, p in sent[22:]] == [None] and sender.idle


def test_keys_outside_rfc_4733_are_refused_before_any_is_sent() -> None:
    sender = KeySender()
    with pytest.raises(ValueError, match="'x'"):
        sender.add("1x")
    assert sender.idle


def test_receiver_reports_each_event_once_whatever_repeats_or_reorders() -> None:
    sender = KeySender()
    sender.add("1#1")
    packets = [p for _, p in run(sender, 40) if p is not None]
    receiver = KeyReceiver()
    keys = []
    # every packet twice, and the end packets of the first key again after the others
    for packet in packets + packets[:8]:
        for _ in range(2):
            key = receiver.accept(packet.timestamp, packet.payload)  # type: ignore[union-attr]
            if key is not None:
                keys.append(key)
    assert keys == ["1", "#", "1"]  # the same key twice is two events (two timestamps)


def test_an_event_is_reported_even_when_its_first_packets_are_lost() -> None:
    receiver = KeyReceiver()
    end = TelephoneEvent("5", True, 10, 800).pack()
    assert receiver.accept(4242, end) == "5"
    assert receiver.accept(4242, end) is None


def test_a_bad_event_payload_is_an_error_not_a_key() -> None:
    with pytest.raises(RtpError):
        KeyReceiver().accept(1, b"\x01")

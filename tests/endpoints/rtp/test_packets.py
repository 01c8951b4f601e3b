"""RTP header packing (RFC 3550), telephone-event payloads (RFC 4733), the receive rule."""

from __future__ import annotations

import struct

import pytest

from ivrbot.endpoints.rtp.packets import RtpError, RtpPacket, TelephoneEvent
from ivrbot.endpoints.rtp.sequencing import Sequencer, Verdict

pytestmark = pytest.mark.unit


def test_header_fields_sit_where_rfc_3550_puts_them() -> None:
    packet = RtpPacket(8, 0xBEEF, 0x01020304, 0xCAFEBABE, b"\xd5" * 160, marker=True)
    data = packet.pack()
    assert data[:12] == bytes.fromhex("80 88 beef 01020304 cafebabe".replace(" ", ""))
    assert len(data) == 172
    assert RtpPacket.unpack(data) == packet


def test_sequence_and_timestamp_wrap_in_their_widths() -> None:
    data = RtpPacket(0, 0x10000 + 5, 0x1_0000_0007, 1, b"").pack()
    assert RtpPacket.unpack(data).sequence == 5
    assert RtpPacket.unpack(data).timestamp == 7


def test_unpack_skips_csrcs_extension_and_padding() -> None:
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 1, 0, 1, 2, 3)
    csrc = struct.pack("!I", 99)
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    data = header + csrc + extension + b"abc" + b"\x00\x02"  # 2 bytes of padding
    assert RtpPacket.unpack(data).payload == b"abc"


@pytest.mark.parametrize("data", [b"\x80\x00", bytes(12), b"\x40" + bytes(11)])
def test_what_is_not_rtp_is_refused(data: bytes) -> None:
    with pytest.raises(RtpError):
        RtpPacket.unpack(data)


def test_telephone_event_payload_layout() -> None:
    event = TelephoneEvent("#", True, 10, 800)
    assert event.pack() == bytes([11, 0x80 | 10]) + struct.pack("!H", 800)
    assert TelephoneEvent.unpack(event.pack()) == event
    assert TelephoneEvent.unpack(bytes([0, 10, 0, 160])).key == "0"
    with pytest.raises(RtpError):
        TelephoneEvent.unpack(bytes([16, 0, 0, 160]))  # a tone event, not a key


def test_in_order_packets_play_and_gaps_are_lost() -> None:
    seq = Sequencer()
    assert [seq.accept(n) for n in (10, 11, 14)] == [Verdict.PLAY] * 3
    assert (seq.played, seq.lost, seq.late) == (3, 2, 0)


def test_reordered_packet_is_late_and_not_lost_a_repeat_is_a_duplicate() -> None:
    seq = Sequencer()
    verdicts = [seq.accept(n) for n in (1, 3, 2, 3, 2)]
    assert verdicts == [
        Verdict.PLAY,
        Verdict.PLAY,
        Verdict.LATE,
        Verdict.DUPLICATE,
        Verdict.DUPLICATE,
    ]
    assert (seq.lost, seq.late, seq.duplicates) == (0, 1, 2)


def test_sequence_wrap_around_is_in_order() -> None:
    seq = Sequencer()
    assert [seq.accept(n) for n in (65534, 65535, 0, 1)] == [Verdict.PLAY] * 4
    assert seq.accept(65535) is Verdict.DUPLICATE
    assert seq.lost == 0


def test_a_restarted_stream_plays_from_its_own_numbers_and_counts_go_on() -> None:
    seq = Sequencer()
    assert [seq.accept(n) for n in (5000, 5002)] == [Verdict.PLAY] * 2  # 5001 lost
    seq.restart()  # a new SSRC whose numbers start far behind
    assert [seq.accept(n) for n in (10, 11, 13)] == [Verdict.PLAY] * 3  # 12 lost
    assert (seq.played, seq.lost, seq.late) == (5, 2, 0)

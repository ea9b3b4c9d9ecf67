"""The SMPP 3.4 PDU codec: hand-written bytes from the specification, round trips, framing."""

from __future__ import annotations

import pytest

from smsgate.carriers.smpp.pdu import (
    Bind,
    Cmd,
    Framer,
    Pdu,
    PduError,
    Sequences,
    ShortMessage,
    Tag,
    decode_tlvs,
    encode_tlvs,
    message_id_of,
    tlv_int,
    tlv_text,
)


def test_enquire_link_is_a_bare_header() -> None:
    assert Pdu(Cmd.ENQUIRE_LINK, 0, 7).encode() == bytes.fromhex("00000010000000150000000000000007")


def test_bind_transceiver_body_by_hand() -> None:
    body = Bind("esme", "pw", "CMT", addr_ton=1, addr_npi=1).encode()
    assert body == b"esme\0pw\0CMT\0" + bytes((0x34, 1, 1)) + b"\0"
    wire = Pdu(Cmd.BIND_TRANSCEIVER, 0, 1, body).encode()
    assert wire[:4] == (16 + len(body)).to_bytes(4, "big")
    assert wire[4:8] == bytes.fromhex("00000009")


def test_submit_sm_body_by_hand() -> None:
    sm = ShortMessage(
        source_addr="106900",
        destination_addr="8613800138000",
        short_message=b"hi",
        source_ton=5,
        source_npi=0,
        dest_ton=1,
        dest_npi=1,
        esm_class=0x40,
        registered_delivery=1,
        data_coding=8,
    )
    expected = (
        b"\0"  # service_type
        + bytes((5, 0))
        + b"106900\0"
        + bytes((1, 1))
        + b"8613800138000\0"
        + bytes((0x40, 0, 0))  # esm_class, protocol_id, priority
        + b"\0\0"  # schedule, validity
        + bytes((1, 0, 8, 0, 2))  # registered, replace, coding, default id, sm_length
        + b"hi"
    )
    assert sm.encode() == expected


def test_short_message_round_trips_with_tlvs() -> None:
    sm = ShortMessage(
        source_addr="13800138000",
        destination_addr="1069001234",
        short_message="你好".encode("utf-16-be"),
        data_coding=8,
        esm_class=0x04,
        tlvs=((Tag.RECEIPTED_MESSAGE_ID, b"0A1B\0"), (Tag.MESSAGE_STATE, b"\x02")),
    )
    back = ShortMessage.decode(sm.encode())
    assert back == sm
    assert tlv_text(back.tlv(Tag.RECEIPTED_MESSAGE_ID)) == "0A1B"
    assert tlv_int(back.tlv(Tag.MESSAGE_STATE)) == 2
    assert back.tlv(Tag.SAR_MSG_REF_NUM) is None


def test_short_message_over_254_octets_is_refused() -> None:
    with pytest.raises(PduError, match="254"):
        ShortMessage(short_message=b"x" * 255).encode()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"no-nul-anywhere", "NUL"),
        (b"\0\1\1src\0\1\1dst\0\0\0\0\0\0\0\0\0\0\x05ab", "ends early"),
    ],
)
def test_malformed_bodies_raise(body: bytes, why: str) -> None:
    with pytest.raises(PduError, match=why):
        ShortMessage.decode(body)


def test_truncated_tlv_raises() -> None:
    assert decode_tlvs(encode_tlvs(((0x1403, b"\xaa\xbb"),))) == ((0x1403, b"\xaa\xbb"),)
    with pytest.raises(PduError, match="runs past"):
        decode_tlvs(bytes.fromhex("001e00054142"))


def test_submit_sm_resp_message_id() -> None:
    assert message_id_of(b"0001A\0") == "0001A"
    assert message_id_of(b"") == ""  # an error answer may carry no body


def test_framer_joins_split_reads_and_splits_joined_ones() -> None:
    first = Pdu(Cmd.SUBMIT_SM_RESP, 0, 1, b"abc\0").encode()
    second = Pdu(Cmd.ENQUIRE_LINK, 0, 2).encode()
    framer = Framer()
    stream = first + second
    assert framer.feed(stream[:5]) == []
    assert framer.feed(stream[5:20]) == [Pdu(Cmd.SUBMIT_SM_RESP, 0, 1, b"abc\0")]
    assert framer.feed(stream[20:]) == [Pdu(Cmd.ENQUIRE_LINK, 0, 2)]


@pytest.mark.parametrize("length", [0, 15, 70_000])
def test_framer_refuses_impossible_lengths(length: int) -> None:
    with pytest.raises(PduError, match="out of range"):
        Framer().feed(length.to_bytes(4, "big") + bytes(12))


def test_responses_are_recognised() -> None:
    assert Pdu(Cmd.GENERIC_NACK, 3, 1).is_response
    assert not Pdu(Cmd.DELIVER_SM, 0, 1).is_response


def test_sequences_wrap_to_one() -> None:
    seq = Sequences(start=0x7FFFFFFE)
    assert [seq.next() for _ in range(3)] == [0x7FFFFFFE, 0x7FFFFFFF, 1]

"""Alphabets, splitting and reassembly of short-message text (core/segments.py)."""

from __future__ import annotations

import random

import pytest

from smsgate.core.segments import (
    Coding,
    Concat,
    Reassembler,
    coding_for,
    concat_udh,
    decode_text,
    encode_parts,
    encode_text,
    parse_udh,
    split,
)
from smsgate.core.units import units

EMOJI = "\U0001f600"  # one character, a surrogate pair in UCS-2
CHINESE_300 = ("您的验证码是一二三四五六，请在十分钟内使用。" * 14)[:300]


def test_plain_ascii_and_gsm_symbols_are_gsm7() -> None:
    assert coding_for("Hello @ £5 {code} €") is Coding.GSM7
    assert coding_for("") is Coding.GSM7


@pytest.mark.parametrize("text", ["验证码", "【短信宝】hi", "ok " + EMOJI, "`backtick`"])
def test_anything_outside_gsm_0338_is_ucs2(text: str) -> None:
    assert coding_for(text) is Coding.UCS2


def test_gsm7_is_unpacked_with_escapes() -> None:
    assert encode_text("A@", Coding.GSM7) == bytes((0x41, 0x00))
    assert encode_text("{€}", Coding.GSM7) == bytes((0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29))
    with pytest.raises(ValueError, match="U\\+9A8C"):
        encode_text("验", Coding.GSM7)


def test_ucs2_is_utf16_big_endian_with_surrogate_pairs() -> None:
    assert encode_text("验" + EMOJI, Coding.UCS2) == bytes.fromhex("9a8c d83d de00")


@pytest.mark.parametrize(
    ("text", "coding"),
    [("Hi {there} €5 @home", 0), ("您好，世界" + EMOJI, 8), ("Ñoño £ ü", 0)],
)
def test_encode_decode_round_trip(text: str, coding: int) -> None:
    assert decode_text(encode_text(text, Coding(coding)), coding) == text


def test_decode_other_alphabets_never_raises() -> None:
    assert decode_text("你好".encode("gbk"), 15) == "你好"
    assert decode_text(b"caf\xe9", 3) == "café"
    assert "\ufffd" in decode_text(b"\xd8\x3d", 8)  # half a surrogate pair


def test_single_message_capacities() -> None:
    assert split("a" * 160) == ["a" * 160]
    assert len(split("a" * 161)) == 2
    assert split("验" * 70) == ["验" * 70]
    assert [len(p) for p in split("验" * 71)] == [67, 4]


def test_gsm7_parts_hold_153_septets_and_keep_escapes_whole() -> None:
    parts = split("a" * 152 + "€" + "b" * 10)
    assert parts[0] == "a" * 152  # the escape pair would have been septets 153-154
    assert parts[1].startswith("€")


def test_300_chinese_characters_make_five_parts_like_billing() -> None:
    parts = split(CHINESE_300)
    assert [len(p) for p in parts] == [67, 67, 67, 67, 32]
    assert "".join(parts) == CHINESE_300
    assert units(CHINESE_300) == len(parts) == 5


def test_a_surrogate_pair_is_never_split_and_billing_follows() -> None:
    text = "验" * 66 + EMOJI + "验" * 10  # the emoji would take units 67 and 68
    parts = split(text)
    assert parts[0] == "验" * 66
    assert parts[1].startswith(EMOJI)
    assert units(text) == len(parts) == 2
    edge = "验" * 66 + EMOJI + "验" * 66 + EMOJI + "验"  # ceil(136 / 67) = 3 ...
    assert units(edge) == len(split(edge)) == 3


def test_random_texts_bill_exactly_their_parts() -> None:
    rng = random.Random(7)
    alphabet = ["验", "a", EMOJI, "，", "€"]
    for _ in range(500):
        text = "【签名】" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 240)))
        parts = split(text)
        assert "".join(parts) == text
        assert units(text) == len(parts)
        assert all(len(p.encode("utf-16-be")) <= 134 for p in parts) or len(parts) == 1


def test_encode_parts_adds_the_8_bit_concatenation_header() -> None:
    encoded = encode_parts(CHINESE_300, ref=0x1A2)  # only the low byte is sent
    assert encoded.coding is Coding.UCS2
    assert encoded.udhi
    assert len(encoded.parts) == 5
    assert encoded.parts[0][:6] == bytes.fromhex("050003a20501")
    assert encoded.parts[4][:6] == bytes.fromhex("050003a20505")
    assert all(len(p) <= 140 for p in encoded.parts)
    bodies = [parse_udh(p) for p in encoded.parts]
    assert [c.seq for c, _ in bodies if c] == [1, 2, 3, 4, 5]
    assert "".join(decode_text(b, 8) for _, b in bodies) == CHINESE_300


def test_a_short_text_goes_alone_without_header() -> None:
    encoded = encode_parts("Code 1234", ref=9)
    assert encoded == type(encoded)(Coding.GSM7, (b"Code 1234",), udhi=False)


def test_parse_udh_reads_16_bit_references_and_skips_other_elements() -> None:
    payload = bytes.fromhex("0b0403000102080412340302") + b"hi"
    concat, body = parse_udh(payload)
    assert concat == Concat(0x1234, 3, 2)
    assert body == b"hi"


@pytest.mark.parametrize(
    "payload",
    [b"", bytes.fromhex("09050003"), bytes.fromhex("050003010300") + b"x"],
)
def test_malformed_or_impossible_headers_are_not_concatenation(payload: bytes) -> None:
    concat, _ = parse_udh(payload)
    assert concat is None


def test_concat_udh_refuses_impossible_values() -> None:
    with pytest.raises(ValueError, match="bad concatenation"):
        concat_udh(1, 2, 3)


def test_reassembly_in_any_order_ignoring_repeats() -> None:
    r = Reassembler(timeout=60)
    assert r.add("138", Concat(7, 3, 3), "c", now=0) is None
    assert r.add("138", Concat(7, 3, 1), "a", now=1) is None
    assert r.add("138", Concat(7, 3, 1), "A?", now=2) is None  # a repeat
    assert r.add("138", Concat(7, 3, 2), "b", now=3) == "abc"
    assert len(r) == 0


def test_reassembly_keeps_senders_and_references_apart() -> None:
    r = Reassembler(timeout=60)
    r.add("138", Concat(1, 2, 1), "x1", now=0)
    r.add("139", Concat(1, 2, 1), "y1", now=0)
    r.add("138", Concat(2, 2, 2), "z2", now=0)
    assert r.add("139", Concat(1, 2, 2), "y2", now=0) == "y1y2"
    assert r.add("138", Concat(1, 2, 2), "x2", now=0) == "x1x2"
    assert len(r) == 1


def test_a_single_message_passes_straight_through() -> None:
    assert Reassembler(timeout=1).add("k", None, "hi", now=0) == "hi"


def test_missing_part_times_out_with_what_arrived() -> None:
    r = Reassembler(timeout=30)
    r.add("138", Concat(5, 3, 1), "first ", now=0)
    r.add("138", Concat(5, 3, 3), "third", now=5)
    assert r.expired(now=29) == []
    assert r.expired(now=30) == [("138", "first third")]
    assert len(r) == 0

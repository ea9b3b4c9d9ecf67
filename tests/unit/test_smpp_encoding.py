"""A message as submit_sm bodies: alphabet, split, concatenation headers, billed parts."""

from __future__ import annotations

from smsgate.carriers.smpp.encoding import UDHI, choose_coding, encode
from smsgate.core.segments import Coding, decode_text, parse_udh
from smsgate.core.units import units


def reassemble(bodies: tuple[bytes, ...], coding: Coding) -> str:
    out = []
    for seq, body in enumerate(bodies, start=1):
        concat, rest = parse_udh(body)
        assert concat is not None
        assert (concat.total, concat.seq) == (len(bodies), seq)
        out.append(decode_text(rest, coding))
    return "".join(out)


def test_short_ascii_is_one_gsm7_part() -> None:
    parts = encode("Your code is 1234", units("Your code is 1234"), ref=9)
    assert parts.coding is Coding.GSM7
    assert parts.esm_class == 0
    assert parts.bodies == (bytes("Your code is 1234", "ascii"),)


def test_300_chinese_characters_are_five_ucs2_parts_with_udh() -> None:
    text = ("验证码短信测试" * 50)[:300]
    parts = encode(text, units(text), ref=0x1A7)
    assert parts.coding is Coding.UCS2
    assert parts.esm_class == UDHI
    assert len(parts.bodies) == 5 == units(text)
    for seq, body in enumerate(parts.bodies, start=1):
        assert body[:6] == bytes((5, 0, 3, 0xA7, 5, seq))  # the reference keeps its low octet
        assert len(body) <= 6 + 67 * 2
    assert reassemble(parts.bodies, Coding.UCS2) == text


def test_emoji_are_never_split_across_parts() -> None:
    text = "a" * 66 + "😀" * 10  # the pair at unit 67-68 would straddle the first boundary
    parts = encode(text, units(text), ref=1)
    assert parts.coding is Coding.UCS2
    assert len(parts.bodies) == units(text)
    assert reassemble(parts.bodies, Coding.UCS2) == text
    first = parse_udh(parts.bodies[0])[1]
    assert len(first) == 66 * 2  # ends before the pair rather than inside it


def test_gsm7_only_when_it_sends_the_billed_parts() -> None:
    # 100 ASCII characters: one GSM-7 message, but billed 2 units (UCS-2 counting):
    # sending what was billed keeps billing and parts in agreement.
    text = "x" * 100
    assert units(text) == 2
    assert choose_coding(text, units(text)) is Coding.UCS2
    parts = encode(text, units(text), ref=3)
    assert len(parts.bodies) == 2
    # 200 ASCII characters: GSM-7 needs 2 parts of 153, UCS-2 needs 3: billed 3, so UCS-2.
    assert choose_coding("y" * 200, units("y" * 200)) is Coding.UCS2
    # 60 characters with GSM extension characters: one part either way.
    assert choose_coding("{[€]}" * 12, 1) is Coding.GSM7


def test_gsm7_escape_is_kept_whole() -> None:
    text = "price: 5€ [ok]"
    parts = encode(text, units(text), ref=0)
    assert parts.coding is Coding.GSM7
    assert parts.bodies[0].count(0x1B) == 3
    assert decode_text(parts.bodies[0], Coding.GSM7) == text

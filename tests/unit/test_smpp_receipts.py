"""Delivery receipts in deliver_sm: the text form, the TLV form, odd id forms."""

from __future__ import annotations

import pytest

from smsgate.carriers.smpp import receipts
from smsgate.carriers.smpp.pdu import ShortMessage, Tag
from smsgate.core.states import MessageState

TEXT = (
    "id:{id} sub:001 dlvrd:001 submit date:2612040901 done date:2612040902 "
    "stat:{stat} err:{err} text:hello"
)


def receipt_sm(
    text: str = "", tlvs: tuple[tuple[int, bytes], ...] = (), esm: int = 4
) -> ShortMessage:
    return ShortMessage(esm_class=esm, short_message=text.encode(), tlvs=tlvs)


@pytest.mark.parametrize(
    "message_id", ["0000012345", "00FF3A9C", "a1b2c3d4-e5", "12345678901234567890", "7"]
)
def test_text_receipt_keeps_the_id_exactly(message_id: str) -> None:
    r = receipts.parse(receipt_sm(TEXT.format(id=message_id, stat="DELIVRD", err="000")))
    assert r == receipts.Receipt(message_id, "DELIVRD", "000")
    assert r.state is MessageState.DELIVERED
    assert r.error is None


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        ("UNDELIV", MessageState.UNDELIVERED),
        ("EXPIRED", MessageState.UNDELIVERED),
        ("REJECTD", MessageState.UNDELIVERED),
        ("DELETED", MessageState.UNDELIVERED),
        ("UNKNOWN", MessageState.UNDELIVERED),
        ("ENROUTE", None),
        ("ACCEPTD", None),
        ("delivrd", MessageState.DELIVERED),
    ],
)
def test_text_stat_values(stat: str, state: MessageState | None) -> None:
    r = receipts.parse(receipt_sm(TEXT.format(id="1", stat=stat, err="012")))
    assert r is not None
    assert r.state is state
    if state is MessageState.UNDELIVERED:
        assert r.error == f"stat:{stat} err:012"


def test_upper_case_keys_and_no_err() -> None:
    r = receipts.parse(receipt_sm("ID:AbC STAT:UNDELIV"))
    assert r == receipts.Receipt("AbC", "UNDELIV", None)


def test_tlvs_win_over_the_text() -> None:
    # Some SMSCs write the id in decimal in the text and as given (hex) in the TLV.
    sm = receipt_sm(
        TEXT.format(id="4660", stat="DELIVRD", err="000"),
        ((Tag.RECEIPTED_MESSAGE_ID, b"00001234\0"), (Tag.MESSAGE_STATE, b"\x05")),
    )
    r = receipts.parse(sm)
    assert r is not None
    assert r.message_id == "00001234"
    assert r.stat == "UNDELIV"
    assert r.state is MessageState.UNDELIVERED


def test_tlv_only_receipt_with_network_error() -> None:
    sm = receipt_sm(
        "",
        (
            (Tag.RECEIPTED_MESSAGE_ID, b"0xABC"),  # no NUL: some SMSCs omit it
            (Tag.MESSAGE_STATE, b"\x02"),
            (Tag.NETWORK_ERROR_CODE, b"\x03\x00\x0b"),
        ),
        esm=0,
    )
    assert receipts.is_receipt(sm)
    r = receipts.parse(sm)
    assert r == receipts.Receipt("0xABC", "DELIVRD", "03000b")
    undeliv = receipts.parse(
        receipt_sm(
            "",
            (
                (Tag.RECEIPTED_MESSAGE_ID, b"9\0"),
                (Tag.MESSAGE_STATE, b"\x05"),
                (Tag.NETWORK_ERROR_CODE, b"\x03\x00\x0b"),
            ),
        )
    )
    assert undeliv is not None
    assert undeliv.error == "stat:UNDELIV err:03000b"


def test_mo_is_not_a_receipt() -> None:
    assert not receipts.is_receipt(
        ShortMessage(esm_class=0x40, short_message=b"\x05\x00\x03\x01\x02\x01hi")
    )
    assert receipts.is_receipt(receipt_sm("id:1 stat:ENROUTE", esm=0x20))


@pytest.mark.parametrize("text", ["stat:DELIVRD err:000", "id: stat:DELIVRD", "id:5 err:1"])
def test_receipts_missing_id_or_stat_give_none(text: str) -> None:
    assert receipts.parse(receipt_sm(text)) is None


@pytest.mark.parametrize(
    ("bases", "answered", "receipted"),
    [
        ("hex/dec", "0A1F", "2591"),
        ("hex/dec", "0a1f", "0000002591"),
        ("dec/hex", "2591", "a1f"),
        ("hex/hex", "00A1F", "a1f"),
        ("dec/dec", "002591", "2591"),
    ],
)
def test_ids_written_in_other_bases_meet_in_one_form(
    bases: str, answered: str, receipted: str
) -> None:
    assert receipts.submitted_id(answered, bases) == receipts.receipted_id(receipted, bases)


def test_as_is_keeps_ids_exactly_and_non_numbers_pass_through() -> None:
    assert receipts.submitted_id("0A1F", "as-is") == "0A1F"
    assert receipts.receipted_id("0a1f", "as-is") == "0a1f"
    assert receipts.receipted_id("msg-77", "hex/dec") == "msg-77"

"""Phone parsing for /sms, /voice and /wsms.

Carrier expectations are what libphonenumber's data really says (checked, not assumed).
"""

from __future__ import annotations

import pytest

from smsgate import errors
from smsgate.core.phones import (
    MAX_NUMBERS,
    Carrier,
    Phone,
    carrier_of,
    parse_domestic,
    parse_international,
    parse_single_domestic,
)
from smsgate.errors import Rejected


def nationals(phones: list[Phone]) -> list[str]:
    return [p.national for p in phones]


def many(n: int, start: int = 13800000000) -> str:
    return ",".join(str(start + i) for i in range(n))


# --- domestic: shape ---------------------------------------------------------------------


def test_single_number_gives_all_fields() -> None:
    assert parse_domestic("13800138000") == [
        Phone("+8613800138000", "13800138000", "CN", Carrier.CHINA_MOBILE)
    ]


@pytest.mark.parametrize(
    "m",
    [
        "+8613800138000",
        "8613800138000",
        "008613800138000",
        " 8613800138000",  # a raw "+86" in a query string decodes to " 86"
        "+86 13800138000",
        "+86-13800138000",
        "  13800138000  ",
        "\u300013800138000",  # full-width space around the number
    ],
)
def test_country_prefix_and_surrounding_spaces_are_stripped(m: str) -> None:
    assert nationals(parse_domestic(m)) == ["13800138000"]


@pytest.mark.parametrize("m", ["13800138000,18612345678", "13800138000，18612345678"])
def test_ascii_and_full_width_commas_separate(m: str) -> None:
    assert nationals(parse_domestic(m)) == ["13800138000", "18612345678"]


def test_spaces_around_items_are_ignored() -> None:
    assert nationals(parse_domestic(" 13800138000 , 18612345678 ")) == [
        "13800138000",
        "18612345678",
    ]


def test_duplicates_removed_keeping_first_order() -> None:
    m = "18612345678,13800138000,+8618612345678,13312345678,13800138000"
    assert nationals(parse_domestic(m)) == ["18612345678", "13800138000", "13312345678"]


@pytest.mark.parametrize("m", ["13800138000,", ",13800138000", "13800138000,,", "13800138000, ,"])
def test_empty_items_are_skipped(m: str) -> None:
    assert nationals(parse_domestic(m)) == ["13800138000"]


@pytest.mark.parametrize("m", ["", ",", " , ，", "   "])
def test_no_number_at_all_is_rejected(m: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_domestic(m)
    assert info.value.code is errors.BAD_PHONE
    assert "no phone number" in info.value.detail


# --- domestic: invalid numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "23800138000",  # does not start with 1
        "12345678901",  # no such range
        "10012345678",
        "14012345678",  # unassigned 140
        "138-0013-8000",  # inner separators
        "138 0013 8000",
        "1380013800a",
        "１３８００１３８０００",  # full-width digits are not accepted
        "+8513800138000",  # another country code
        "+8686138001380",
        "01012345678",  # a landline with its trunk prefix
        "++8613800138000",
    ],
)
def test_invalid_number_rejects_and_names_it(bad: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_domestic(f"13800138000,{bad}")
    assert info.value.code is errors.BAD_PHONE
    assert bad.strip()[:32] in info.value.detail


def test_an_invalid_number_rejects_the_whole_request_even_among_valid_ones() -> None:
    with pytest.raises(Rejected):
        parse_domestic("13800138000,18612345678,14912345678")


def test_very_long_bad_item_is_truncated_in_the_detail() -> None:
    with pytest.raises(Rejected) as info:
        parse_domestic("9" * 1000)
    assert len(info.value.detail) < 100


# --- domestic: the 99 cap ----------------------------------------------------------------


def test_exactly_99_distinct_numbers_are_allowed() -> None:
    assert len(parse_domestic(many(MAX_NUMBERS))) == 99


def test_100_distinct_numbers_are_rejected() -> None:
    with pytest.raises(Rejected) as info:
        parse_domestic(many(MAX_NUMBERS + 1))
    assert info.value.code is errors.BAD_PHONE
    assert "more than 99" in info.value.detail


def test_cap_counts_distinct_numbers_not_items() -> None:
    m = many(MAX_NUMBERS) + "," + many(MAX_NUMBERS)
    assert len(parse_domestic(m)) == 99


def test_cap_counts_prefixed_forms_as_one_number() -> None:
    m = many(MAX_NUMBERS) + ",+8613800000000,008613800000001"
    assert len(parse_domestic(m)) == 99


# --- carriers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("national", "carrier"),
    [
        ("13800138000", Carrier.CHINA_MOBILE),
        ("15012345678", Carrier.CHINA_MOBILE),
        ("19812345678", Carrier.CHINA_MOBILE),
        ("18612345678", Carrier.CHINA_UNICOM),
        ("13012345678", Carrier.CHINA_UNICOM),
        ("16612345678", Carrier.CHINA_UNICOM),
        ("13312345678", Carrier.CHINA_TELECOM),
        ("18012345678", Carrier.CHINA_TELECOM),
        ("19912345678", Carrier.CHINA_TELECOM),
        ("19212345678", Carrier.CHINA_BROADNET),
        ("19201234567", Carrier.CHINA_BROADNET),
        # MVNO ranges: libphonenumber names the host network (or nothing), we say VIRTUAL
        ("17012345678", Carrier.VIRTUAL),
        ("17051234567", Carrier.VIRTUAL),
        ("17112345678", Carrier.VIRTUAL),
        ("16212345678", Carrier.VIRTUAL),
        ("16512345678", Carrier.VIRTUAL),
        ("16712345678", Carrier.VIRTUAL),
    ],
)
def test_carrier_from_libphonenumber_data(national: str, carrier: Carrier) -> None:
    assert parse_domestic(national)[0].carrier is carrier
    assert carrier_of(national) is carrier


def test_carrier_values_are_stable_strings() -> None:
    assert str(Carrier.CHINA_MOBILE) == "china_mobile"
    assert Carrier.VIRTUAL.value == "virtual"


# --- /voice ------------------------------------------------------------------------------


def test_single_domestic_returns_the_phone() -> None:
    assert parse_single_domestic("+8613800138000").e164 == "+8613800138000"


def test_single_domestic_accepts_the_same_number_repeated() -> None:
    assert parse_single_domestic("13800138000,8613800138000").national == "13800138000"


def test_single_domestic_rejects_two_numbers() -> None:
    with pytest.raises(Rejected) as info:
        parse_single_domestic("13800138000,18612345678")
    assert info.value.code is errors.BAD_PHONE
    assert "exactly one" in info.value.detail


def test_single_domestic_rejects_invalid() -> None:
    with pytest.raises(Rejected) as info:
        parse_single_domestic("12345")
    assert info.value.code is errors.BAD_PHONE


# --- /wsms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "e164", "national", "country"),
    [
        ("+14155552671", "+14155552671", "4155552671", "US"),
        (" 14155552671", "+14155552671", "4155552671", "US"),  # raw + decoded to a space
        ("+85291234567", "+85291234567", "91234567", "HK"),
        ("+886912345678", "+886912345678", "912345678", "TW"),
        ("+61412345678", "+61412345678", "412345678", "AU"),
        ("+447911123456", "+447911123456", "7911123456", "GG"),  # libphonenumber's region
    ],
)
def test_international_e164(m: str, e164: str, national: str, country: str) -> None:
    assert parse_international(m) == [Phone(e164, national, country, Carrier.UNKNOWN)]


def test_international_mainland_number_keeps_its_carrier() -> None:
    assert parse_international("+8613800138000") == [
        Phone("+8613800138000", "13800138000", "CN", Carrier.CHINA_MOBILE)
    ]


def test_international_separators_and_dedupe() -> None:
    phones = parse_international("+14155552671，+85291234567, 14155552671,")
    assert [p.e164 for p in phones] == ["+14155552671", "+85291234567"]


def test_international_raw_plus_list_decoded_to_spaces() -> None:
    phones = parse_international(" 14155552671, 85291234567")
    assert [p.e164 for p in phones] == ["+14155552671", "+85291234567"]


@pytest.mark.parametrize(
    "bad",
    [
        "14155552671",  # bare digits: not E.164, and not guessed
        "+81901234567",  # invalid for Japan
        "+0012345678",
        "+999123456",  # unassigned country code
        "+1 415 555 2671",  # inner spaces
        "+1-415-555-2671",
        "+12",
        "+1234567890123456",  # 16 digits
        "0014155552671",
        "+8614012345678",  # mainland but not a mobile range
    ],
)
def test_international_invalid_rejected(bad: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_international(bad)
    assert info.value.code is errors.BAD_PHONE


def test_international_bare_digits_explain_the_plus() -> None:
    with pytest.raises(Rejected) as info:
        parse_international("14155552671")
    assert "leading +" in info.value.detail


def test_international_cap() -> None:
    m = ",".join(f"+1415555{i:04d}" for i in range(MAX_NUMBERS + 1))
    with pytest.raises(Rejected) as info:
        parse_international(m)
    assert "more than 99" in info.value.detail


def test_international_empty_rejected() -> None:
    with pytest.raises(Rejected) as info:
        parse_international(" , ")
    assert info.value.code is errors.BAD_PHONE


def test_block_rule_agrees_with_libphonenumber_number_by_number() -> None:
    """Validity, type and carrier are decided per block of 10,000 (7-digit prefix); asked
    about each number itself, libphonenumber must give the same answer."""
    import random

    from smsgate.core import phones

    rng = random.Random(20261203)
    numbers = [
        f"1{segment:02d}{rng.randrange(10**8):08d}" for segment in range(100) for _ in range(60)
    ]
    numbers += ["17400000000", "17405999999", "17406000000", "16100000000", "16109999999"]
    differ = [n for n in numbers if phones._domestic(n) != phones._domestic_by_number(n)]
    assert differ == []
    assert sum(phones._domestic(n) is not None for n in numbers) > 1000  # not all refused

"""The CMPP codec against PDUs written out by hand from the protocol document, and round trips.

Fixtures are hex spelled field by field (CMPP 2.0 / 3.0, sections "消息头", CMPP_CONNECT,
CMPP_SUBMIT, CMPP_DELIVER and its status report); the expected MD5 digests were worked out
with `md5sum` on the spelled-out input, not with this code.
"""

from __future__ import annotations

import pytest

from smsgate.carriers.cmpp import codec
from smsgate.carriers.cmpp.codec import Command, Version

H = bytes.fromhex


def test_header_of_an_active_test() -> None:
    wire = H("0000000c0000000800000007")  # Total_Length 12, ACTIVE_TEST, Sequence_Id 7
    assert codec.frame(Command.ACTIVE_TEST, 7) == wire
    assert codec.parse_header(wire) == codec.Header(12, Command.ACTIVE_TEST, 7)


@pytest.mark.parametrize("length", [0, 11, codec.MAX_PDU + 1])
def test_header_with_an_impossible_length_is_refused(length: int) -> None:
    with pytest.raises(codec.CodecError):
        codec.parse_header(length.to_bytes(4, "big") + H("0000000100000001"))


def test_connect_authenticator_for_a_fixed_time_and_secret() -> None:
    # MD5("300250" + 9 x 00 + "secret" + "0704123000"), by md5sum.
    expected = H("0588b9b2cb5d61c5690e7747e8147e53")
    assert codec.authenticator_source("300250", "secret", 704123000) == expected
    # A timestamp with a leading zero month keeps its ten digits.
    assert codec.authenticator_source("300250", "secret", 704123000) != codec.authenticator_source(
        "300250", "secret", 704123001
    )


def test_connect_pdu_byte_for_byte() -> None:
    auth = H("0588b9b2cb5d61c5690e7747e8147e53")
    wire = (
        H("000000270000000100000001")  # 39 bytes, CONNECT, seq 1
        + b"300250"  # Source_Addr, 6 octets
        + auth  # AuthenticatorSource
        + H("20")  # Version 2.0
        + H("29f81078")  # Timestamp 0704123000 as an unsigned integer
    )
    body = codec.encode_connect(codec.Connect("300250", auth, 0x20, 704123000))
    assert codec.frame(Command.CONNECT, 1, body) == wire
    assert codec.decode_connect(wire[12:]) == codec.Connect("300250", auth, 0x20, 704123000)


@pytest.mark.parametrize(
    ("version", "status_bytes", "ismg"),
    [
        # MD5(Status + AuthenticatorSource + "secret"); Status 1 byte in 2.0, 4 in 3.0.
        (Version.V2, H("00"), H("cd9a7fe16f52d2f3bfaee770ddc63162")),
        (Version.V3, H("00000000"), H("cba15e4f6267f071533207cf8da578c6")),
    ],
)
def test_connect_resp_authenticator_by_version(
    version: Version, status_bytes: bytes, ismg: bytes
) -> None:
    source = H("0588b9b2cb5d61c5690e7747e8147e53")
    assert codec.authenticator_ismg(0, source, "secret", version) == ismg
    body = codec.encode_connect_resp(codec.ConnectResp(0, ismg, version), version)
    assert body == status_bytes + ismg + bytes([version])
    assert codec.decode_connect_resp(body, version) == codec.ConnectResp(0, ismg, version)


def test_msg_id_fields() -> None:
    # 12-04 05:30:15, gateway 300250, sequence 1: 4+5+5+6+6+22+16 bits.
    wire = H("c215e3c494da0001")
    assert codec.make_msg_id(12, 4, 5, 30, 15, 300250, 1) == wire
    assert codec.split_msg_id(wire) == codec.MsgIdParts(12, 4, 5, 30, 15, 300250, 1)
    assert codec.msg_id_text(wire) == "c215e3c494da0001"
    assert codec.msg_id_bytes("c215e3c494da0001") == wire


def test_msg_id_kept_exactly_even_when_not_a_date() -> None:
    odd = H("ffffffffffffffff")  # not a valid month: still kept byte for byte
    assert codec.msg_id_bytes(codec.msg_id_text(odd)) == odd


REPORT_V2 = (
    H("c215e3c494da0001")  # Msg_Id of the submit
    + b"DELIVRD"  # Stat, 7
    + b"2612040530"  # Submit_time YYMMDDHHMM
    + b"2612040531"  # Done_time
    + b"13800138000"
    + b"\0" * 10  # Dest_terminal_Id, 21
    + H("00000001")  # SMSC_sequence
)


def test_status_report_deliver_v2_byte_for_byte() -> None:
    wire_body = (
        H("0102030405060708")  # Msg_Id of the DELIVER itself
        + b"10690001"
        + b"\0" * 13  # Dest_Id, 21
        + b"\0" * 10  # Service_Id
        + H("000000")  # TP_pid, TP_udhi, Msg_Fmt
        + b"13800138000"
        + b"\0" * 10  # Src_terminal_Id, 21
        + H("01")  # Registered_Delivery: a status report
        + bytes([len(REPORT_V2)])  # Msg_Length 60
        + REPORT_V2
        + b"\0" * 8  # Reserve
    )
    assert len(REPORT_V2) == 60
    deliver = codec.decode_deliver(wire_body, Version.V2)
    assert deliver.registered_delivery == 1
    assert deliver.src_terminal_id == "13800138000"
    report = codec.decode_report(deliver.msg_content, Version.V2)
    assert report == codec.StatusReport(
        H("c215e3c494da0001"), "DELIVRD", "2612040530", "2612040531", "13800138000", 1
    )
    assert codec.encode_report(report, Version.V2) == REPORT_V2
    assert codec.encode_deliver(deliver, Version.V2) == wire_body


def test_status_report_v3_is_71_bytes() -> None:
    report = codec.StatusReport(H("c215e3c494da0001"), "UNDELIV", "2612040530", "2612040531",
                                "13800138000", 9)  # fmt: skip
    encoded = codec.encode_report(report, Version.V3)
    assert len(encoded) == 71
    assert codec.decode_report(encoded, Version.V3) == report


def test_submit_v2_layout() -> None:
    submit = codec.Submit(
        msg_src="300250",
        src_id="106900",
        dest_terminal_ids=("13800138000",),
        msg_content="你好".encode("utf-16-be"),
    )
    body = codec.encode_submit(submit, Version.V2)
    # 8+1+1+1+1+10+1+21+1+1+1+6+2+6+17+17+21+1 + 21 + 1 + 4 + 8
    assert len(body) == 117 + 21 + 1 + 4 + 8
    assert body[117:128] == b"13800138000"
    assert body[138] == 4
    assert body[139:143] == H("4f60597d")
    assert codec.decode_submit(body, Version.V2) == submit


@pytest.mark.parametrize("version", list(Version))
def test_round_trips(version: Version) -> None:
    submit = codec.Submit(
        msg_src="300250",
        src_id="10690001",
        dest_terminal_ids=("13800138000", "13900139000"),
        msg_content=H("050003ab0201") + "长".encode("utf-16-be"),
        tp_udhi=1,
        pk_total=2,
        pk_number=1,
        service_id="SMS",
        link_id="L1" if version is Version.V3 else "",
    )
    assert codec.decode_submit(codec.encode_submit(submit, version), version) == submit
    deliver = codec.Deliver(H("0000000000000001"), "10690001", "13800138000", b"hi", 0, 0)
    assert codec.decode_deliver(codec.encode_deliver(deliver, version), version) == deliver
    resp = codec.Resp(H("c215e3c494da0001"), 8)
    assert codec.decode_resp(codec.encode_resp(resp, version), version) == resp


def test_sizes_differ_by_version() -> None:
    resp = codec.Resp(b"\0" * 8, 0)
    assert len(codec.encode_resp(resp, Version.V2)) == 9
    assert len(codec.encode_resp(resp, Version.V3)) == 12


def test_truncated_body_is_an_error() -> None:
    with pytest.raises(codec.CodecError):
        codec.decode_submit(b"\0" * 50, Version.V2)
    with pytest.raises(codec.CodecError):
        codec.decode_resp(b"\0" * 9, Version.V3)


def test_version_byte() -> None:
    assert codec.version_of(0x20) is Version.V2
    assert codec.version_of(0x21) is Version.V2  # what some 2.0 clients send
    assert codec.version_of(0x30) is Version.V3

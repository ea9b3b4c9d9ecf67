"""Carrier kinds: the options each kind of link takes and how to build one from them.

An operator configures carriers with `smsgate carrier add NAME --kind K ...`; the options
are checked here, stored as JSON, and a running server builds the carrier from them.
Options common to every kind are read by routing, not by the carrier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from smsgate.carriers import aliyun, smsbao, tencent
from smsgate.carriers.cmpp import client as cmpp_client
from smsgate.carriers.simulator import SimulatorCarrier, SimulatorConfig
from smsgate.carriers.smpp import carrier as smpp
from smsgate.carriers.smpp.receipts import ID_BASES
from smsgate.core.carriers import CarrierConfig
from smsgate.core.routing import Rules, parse_networks
from smsgate.ports import Carrier

SHOWN_SECRET = "set"  # what a listing prints in place of a secret


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    type: type  # str, int, float or bool
    help: str
    default: Any = None
    required: bool = False
    secret: bool = False
    choices: tuple[str, ...] = ()

    def convert(self, value: Any) -> Any:
        """The value in this option's type; text from the command line is parsed."""
        try:
            if self.type is bool and isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError(value)
                converted: Any = lowered in {"1", "true", "yes", "on"}
            else:
                converted = self.type(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"{self.name} must be {_TYPE_NAMES[self.type]}, not {value!r}"
            ) from None
        if self.choices and converted not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}")
        if self.type in (int, float) and converted < 0:
            raise ValueError(f"{self.name} must not be negative")
        return converted


_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}

# Read by routing and the dispatcher for every kind.
COMMON_OPTIONS = (
    Option(
        "networks",
        str,
        "Networks this carrier serves: cmcc,cucc,ctcc,cbn,virtual,intl (empty: every number).",
        default="",
    ),
    Option(
        "cooling_seconds",
        float,
        "After a fault (down, out of balance), skip this carrier for so long.",
        default=30.0,
    ),
    Option(
        "report_timeout_hours",
        float,
        "A message with no final report this long after submission becomes `unknown`.",
    ),
)


@dataclass(frozen=True, slots=True)
class CarrierKind:
    name: str
    summary: str
    options: tuple[Option, ...]
    build: Callable[[str, Mapping[str, Any]], Carrier]

    def all_options(self) -> tuple[Option, ...]:
        return COMMON_OPTIONS + self.options

    def validate(
        self, given: Mapping[str, Any], base: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """``base`` (the stored options) updated with ``given``, checked and typed.

        Raises ValueError naming the option and what to do.
        """
        known = {o.name: o for o in self.all_options()}
        unknown = sorted(set(given) - known.keys())
        if unknown:
            raise ValueError(
                f"kind {self.name} has no option {', '.join(unknown)}; "
                f"its options: {', '.join(known)}"
            )
        merged = {k: v for k, v in (base or {}).items() if k in known}
        merged.update({k: known[k].convert(v) for k, v in given.items() if v is not None})
        for option in self.all_options():
            if option.name not in merged and option.default is not None:
                merged[option.name] = option.default
        missing = [o.name for o in self.all_options() if o.required and o.name not in merged]
        if missing:
            flags = ", ".join("--" + m.replace("_", "-") for m in missing)
            raise ValueError(f"kind {self.name} needs {flags}")
        parse_networks(str(merged.get("networks", "")))  # raises with the known names
        return merged

    def shown(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options as they may be printed: secrets replaced."""
        secret = {o.name for o in self.all_options() if o.secret}
        return {k: (SHOWN_SECRET if k in secret and v else v) for k, v in options.items()}


def _simulator(name: str, options: Mapping[str, Any]) -> Carrier:
    return SimulatorCarrier(
        SimulatorConfig(
            delay_seconds=options.get("delay_seconds", 0.5),
            failure_ratio=options.get("failure_ratio", 0.0),
            fail_suffix=options.get("fail_suffix", ""),
            stall_suffix=options.get("stall_suffix", ""),
            throttle_suffix=options.get("throttle_suffix", ""),
            reject_suffix=options.get("reject_suffix", ""),
        ),
        name=name,
    )


SIMULATOR_KIND = CarrierKind(
    "simulator",
    "Delivers nothing: reports every message delivered after a delay (development, tests).",
    (
        Option("delay_seconds", float, "Seconds before the delivery report.", default=0.5),
        Option("failure_ratio", float, "Share reported undelivered at random (0-1).", default=0.0),
        Option("fail_suffix", str, "Numbers ending so are reported undelivered."),
        Option("stall_suffix", str, "Numbers ending so never get a report."),
        Option("throttle_suffix", str, "Numbers ending so are throttled once."),
        Option("reject_suffix", str, "Numbers ending so are refused at submit."),
    ),
    _simulator,
)


def _limits() -> tuple[Option, ...]:
    """What every upstream HTTP kind takes to stay within its provider's limits."""
    return (
        Option(
            "timeout", float, "Seconds to connect, to send, to wait for the answer.", default=10.0
        ),
        Option("concurrency", int, "Requests in flight at once.", default=8),
        Option("rate", float, "Requests per second at most (0: no limit).", default=0.0),
    )


SMSBAO_KIND = CarrierKind(
    "smsbao",
    "SMSBao HTTP API upstream: SMSBao itself or another smsgate (no receipts).",
    (
        Option("url", str, "Base URL.", default="https://api.smsbao.com"),
        Option("username", str, "Account name at the upstream.", required=True),
        Option("password", str, "Login password (sent as its MD5).", secret=True),
        Option("api_key", str, "Or the ApiKey (sent as is; wins).", secret=True),
        Option("product", str, "Product id `g` at the upstream."),
        Option(
            "assume_delivered",
            bool,
            "Report delivered on the upstream's `0` (it sends no receipts).",
            default=True,
        ),
        Option("balance_interval", float, "Seconds between /query (>= 60).", default=60.0),
        *_limits(),
    ),
    smsbao.build,
)

ALIYUN_KIND = CarrierKind(
    "aliyun",
    "Alibaba Cloud SMS (Dysmsapi): mapped templates, receipts polled.",
    (
        Option("access_key", str, "AccessKey ID.", required=True),
        Option("secret", str, "AccessKey secret.", required=True, secret=True),
        Option("url", str, "Endpoint.", default="https://dysmsapi.aliyuncs.com"),
        Option("region", str, "RegionId.", default="cn-hangzhou"),
        Option("poll_interval", float, "Seconds between receipt queries.", default=10.0),
        *_limits(),
    ),
    aliyun.build,
)

TENCENT_KIND = CarrierKind(
    "tencent",
    "Tencent Cloud SMS (API 3.0): mapped templates, receipts and replies pulled.",
    (
        Option("access_key", str, "SecretId.", required=True),
        Option("secret", str, "SecretKey.", required=True, secret=True),
        Option("app_id", str, "SmsSdkAppId.", required=True),
        Option("url", str, "Endpoint.", default="https://sms.tencentcloudapi.com"),
        Option("region", str, "Region.", default="ap-guangzhou"),
        Option("poll_interval", float, "Seconds between status and reply pulls.", default=5.0),
        Option("pull_replies", bool, "Pull user replies (MO).", default=True),
        *_limits(),
    ),
    tencent.build,
)

SMPP_KIND = CarrierKind(
    "smpp",
    "SMPP 3.4 link to a carrier's or aggregator's SMSC: receipts and replies by deliver_sm.",
    (
        Option("host", str, "SMSC host.", required=True),
        Option("port", int, "SMSC port.", default=2775),
        Option("system_id", str, "Login: system_id.", required=True),
        Option("password", str, "Login password.", secret=True, default=""),
        Option("system_type", str, "system_type sent in the bind.", default=""),
        Option("source_addr", str, "Source number; an account's extended code is appended."),
        Option("source_ton", int, "Source address TON (5: alphanumeric).", default=0),
        Option("source_npi", int, "Source address NPI.", default=0),
        Option("dest_ton", int, "Destination TON (0: as stored; 1: international).", default=0),
        Option("dest_npi", int, "Destination NPI (1: E.164).", default=1),
        Option("window", int, "submit_sm in flight per bind.", default=32),
        Option("tps", float, "Parts per second at most, all binds (0: none).", default=0.0),
        Option("binds", int, "Binds to open (of each kind with transmitter+receiver).", default=1),
        Option(
            "bind_mode",
            str,
            "transceiver, or transmitter+receiver (separate binds).",
            default="transceiver",
            choices=("transceiver", "transmitter+receiver"),
        ),
        Option("response_timeout", float, "Seconds to wait for any answer.", default=10.0),
        Option("enquire_link_seconds", float, "Keepalive interval (0: none).", default=30.0),
        Option(
            "reassembly_seconds",
            float,
            "A long reply missing parts this long is kept as it arrived.",
            default=60.0,
        ),
        Option(
            "id_bases",
            str,
            "Bases of ids in submit_sm_resp/receipts (e.g. hex/dec) when an SMSC writes them "
            "differently; as-is matches the text exactly.",
            default="as-is",
            choices=ID_BASES,
        ),
    ),
    smpp.build,
)

CMPP_KIND = CarrierKind(
    "cmpp",
    "CMPP 2.0/3.0 to a carrier's ISMG (China Mobile; docs/cmpp.md).",
    (
        Option("host", str, "ISMG host.", required=True),
        Option("port", int, "ISMG port.", default=7890),
        Option("sp_id", str, "SP code (Source_Addr of CONNECT, Msg_src of SUBMIT).", required=True),
        Option("secret", str, "Shared secret of the login.", required=True, secret=True),
        Option("version", str, "Protocol version.", default="2", choices=("2", "3")),
        Option("service_id", str, "Service_Id of each SUBMIT.", default=""),
        Option("src_id", str, "Sender number (Src_Id); extended codes are appended.", default=""),
        Option("window", int, "Unanswered SUBMITs per connection.", default=16),
        Option(
            "tps", float, "SUBMITs per second at most, all connections (0: no limit).", default=0.0
        ),
        Option("connections", int, "Connections to open.", default=1),
        Option("response_timeout", float, "Seconds to wait for a SUBMIT_RESP.", default=10.0),
        Option("active_test_seconds", float, "Idle this long: send ACTIVE_TEST.", default=30.0),
    ),
    cmpp_client.build,
)

KINDS: dict[str, CarrierKind] = {
    kind.name: kind
    for kind in (SIMULATOR_KIND, SMSBAO_KIND, ALIYUN_KIND, TENCENT_KIND, SMPP_KIND, CMPP_KIND)
}


def kind_of(name: str) -> CarrierKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown kind {name!r}; choose from {', '.join(sorted(KINDS))}") from None


def rules_of(config: CarrierConfig) -> Rules:
    """What routing needs of a configured carrier."""
    return Rules(
        networks=parse_networks(str(config.options.get("networks", ""))),
        cooling_seconds=float(config.options.get("cooling_seconds", 30.0)),
    )


class KindCatalog:
    """The kinds as services/carrier_admin.py asks about them."""

    def kinds(self) -> list[str]:
        return sorted(KINDS)

    def validate(
        self, kind: str, given: Mapping[str, Any], base: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return kind_of(kind).validate(given, base)

    def shown(self, kind: str, options: Mapping[str, Any]) -> dict[str, Any]:
        return kind_of(kind).shown(options) if kind in KINDS else dict(options)

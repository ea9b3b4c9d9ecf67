"""Typed settings: each declared once, read from env ``SMSGATE_*`` or a TOML file.

Precedence (highest first): constructor arguments (the CLI's flags), environment
variables, the TOML file named by ``SMSGATE_CONFIG`` (default ``<data dir>/smsgate.toml``
if it exists), then the defaults below. ``smsgate config sample`` prints a commented
sample file generated from this class.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from smsgate.core.push_policy import PushSchedule

DEFAULT_DATA_DIR = Path("smsgate-data")
DEFAULT_PORT = 8080
# One variable holding the whole Settings as JSON: how `serve --workers N` passes the
# settings it built from its flags to the worker processes uvicorn starts.
HANDOVER_ENV = "SMSGATE_SETTINGS_JSON"


class Settings(BaseSettings):
    """Everything an operator can set. Field descriptions double as documentation."""

    model_config = SettingsConfigDict(env_prefix="SMSGATE_", extra="forbid")

    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Where the SQLite database lives.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; unset means SQLite in the data dir. "
        "postgresql://user@host/db selects PostgreSQL (psycopg 3).",
    )
    host: str = Field("127.0.0.1", description="Address `smsgate serve` listens on.")
    port: int = Field(DEFAULT_PORT, description="Port `smsgate serve` listens on.")
    server: Literal["granian", "uvicorn"] = Field(
        "granian",
        description="The HTTP server `smsgate serve` runs the app on: granian (faster on this "
        "workload, see docs/benchmarks.md) or uvicorn.",
    )
    access_log: bool = Field(
        False,
        description="Log every HTTP request (the `p` secret masked). Off by default: a log "
        "line per request costs a quarter of the server's time under load.",
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto",
        description="Log lines as JSON objects (with a request id) or as text; auto: text in "
        "a terminal, JSON otherwise.",
    )
    log_personal_data: bool = Field(
        False,
        description="Show phone numbers and content in logs (development only); off, they are "
        "masked like the `p` secret.",
    )
    http_header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A client has this long to send a request's headers (also the longest an "
        "idle keep-alive connection is kept); then the connection is closed.",
    )
    http_body_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest wait for the next part of a request body: 408."
    )
    http_keep_alive_seconds: int = Field(
        5, ge=1, description="uvicorn: idle keep-alive connections are closed after this."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs of reverse proxies whose X-Forwarded-For is believed.",
    )
    snapshot_refresh_seconds: float = Field(
        0.5, gt=0, description="How often a server looks for admin changes (accounts, keys...)."
    )
    query_interval_seconds: float = Field(
        60.0, ge=0, description="Minimum time between two balance queries of one account."
    )
    login_failures_per_account: int = Field(
        10,
        ge=1,
        description="Failed logins allowed per account from one source address (an IPv6 "
        "/64) within the lockout window; other addresses are not affected.",
    )
    login_failures_per_ip: int = Field(
        30, ge=1, description="Failed logins allowed per source address, all accounts."
    )
    login_failures_per_network: int = Field(
        100,
        ge=1,
        description="Failed logins per network (IPv4 /24, IPv6 /48) after which its addresses "
        "that failed themselves are refused; its other addresses are still heard.",
    )
    login_lockout_seconds: float = Field(
        300.0, gt=0, description="Window (and lockout length) for failed-login limits."
    )
    reveal_unknown_accounts: bool = Field(
        False,
        description="Answer 40 for an unknown username, as SMSBao does. Off: 30, the answer "
        "to a wrong password, so usernames cannot be found by asking.",
    )
    password_checks: int = Field(
        2,
        ge=1,
        description="Password (argon2, 64 MiB each) checks run at once per process; more "
        "wait their turn, so a burst of guesses cannot exhaust memory.",
    )

    redis_url: str | None = Field(
        None,
        description="Redis shared by every node for the rate limits (frequency caps, "
        "failed logins, the /query limit), e.g. redis://127.0.0.1:6379/0. Unset: kept in "
        "each process, right for one node only.",
    )
    redis_prefix: str = Field(
        "smsgate:", description="Prefix of every Redis key (several installations, one Redis)."
    )

    run_worker: bool = Field(
        True, description="Run the dispatcher in the server process (off: `smsgate worker`)."
    )

    # -- the send path --
    freq_per_minute: int | None = Field(1, ge=0, description="Messages per number per minute.")
    freq_per_hour: int | None = Field(5, ge=0, description="Messages per number per hour.")
    freq_per_day: int | None = Field(10, ge=0, description="Messages per number per day.")
    freq_same_content_seconds: float | None = Field(
        3600.0, ge=0, description="Same content to the same number is refused for this long."
    )
    daily_account_cap: int | None = Field(
        None, ge=0, description="Messages per account per day (unset: no cap)."
    )
    group_commit_wait_ms: float = Field(
        2.0, ge=0, description="How long the writer gathers requests into one transaction."
    )
    group_commit_max: int = Field(200, ge=1, description="Most requests in one transaction.")
    dispatch_batch: int = Field(
        500,
        ge=1,
        description="Messages claimed per dispatch round (more is faster; a crash leaves at "
        "most this many `unknown`).",
    )
    message_validity_hours: float = Field(
        24.0, gt=0, description="Messages not submitted within this are expired and refunded."
    )
    report_timeout_hours: float = Field(
        72.0,
        gt=0,
        description="A submitted message with no final delivery report this long after "
        "submission becomes `unknown` (settle it with `smsgate messages settle`).",
    )
    claim_lease_seconds: float = Field(
        120.0, gt=0, description="A claim older than this belongs to a dead worker (cluster)."
    )
    console_secret: str | None = Field(
        None,
        description="Key that signs console session cookies (32+ characters). Unset: a "
        "random key kept in `console.key` in the data directory; give the same key to every "
        "node behind one load balancer.",
    )
    console_session_hours: float = Field(
        12.0, gt=0, description="A console sign-in lasts this long."
    )
    simulator_api: bool | Literal["auto"] = Field(
        "auto",
        description="Offer POST /v1/simulator/replies: auto (only while a product routes to "
        "the built-in simulator carrier), true or false.",
    )
    simulator_delay_seconds: float = Field(
        0.5, ge=0, description="Simulator: time from submit to delivery report."
    )
    simulator_failure_ratio: float = Field(
        0.0, ge=0, le=1, description="Simulator: share of messages reported undelivered."
    )
    simulator_fail_suffix: str = Field(
        "", description="Simulator: numbers ending so are reported undelivered."
    )
    simulator_stall_suffix: str = Field(
        "", description="Simulator: numbers ending so never get a delivery report."
    )
    simulator_throttle_suffix: str = Field(
        "", description="Simulator: numbers ending so are throttled once."
    )
    simulator_reject_suffix: str = Field(
        "", description="Simulator: numbers ending so are refused at submit (refunded)."
    )

    # -- replies (MO push); fractions of minutes are allowed, so tests can shorten them --
    push_retry_minutes: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [1.0, 3.0, 10.0],
        description="Retries of a failed reply push, in minutes after the first attempt "
        "(comma list in the environment: 1,3,10).",
    )
    push_pause_after_failures: int = Field(
        10, ge=1, description="Failed pushes within the window that pause an account's pushes."
    )
    push_failure_window_minutes: float = Field(
        60.0, gt=0, description="The window in which failed pushes are counted."
    )
    push_pause_minutes: float = Field(
        60.0, gt=0, description="How long an account's pushes pause after too many failures."
    )
    push_timeout_seconds: float = Field(
        5.0, gt=0, description="Time allowed for one push (connect, send, answer)."
    )
    push_concurrency: int = Field(32, ge=1, description="Pushes in flight per worker process.")
    push_concurrency_per_account: int = Field(
        4, ge=1, description="Of which at most this many to one account (a slow URL waits alone)."
    )
    service_number: str = Field(
        "",
        description="The number replies are sent to; what follows it in a reply's destination "
        "address is the account's extended code. Unset: the whole address is the code.",
    )

    # -- hardening: push targets, TLS, observability --
    push_allowed_targets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Internal receivers reply pushes may reach anyway (MO URLs are refused "
        "for loopback, private, link-local and metadata addresses): CIDRs or host names, "
        "comma list in the environment: 10.1.2.0/24,receiver.internal.",
    )
    tls_cert: Path | None = Field(
        None, description="PEM certificate (chain) for HTTPS; with tls_key, serve HTTPS too."
    )
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    tls_port: int = Field(8443, description="Port of HTTPS (HTTP stays on `port`).")
    metrics: bool = Field(True, description="Serve Prometheus metrics at /metrics.")

    # -- CMPP server for customers (docs/cmpp.md) --
    cmpp_port: int | None = Field(
        None, description="Serve CMPP 2.0/3.0 to customers on this port (on `host`); off if unset."
    )
    cmpp_window: int = Field(16, ge=1, description="SUBMITs of one CMPP connection at once.")
    cmpp_connections_per_account: int = Field(
        4, ge=1, description="CMPP connections one account may hold at once."
    )
    cmpp_gateway_code: int = Field(
        1, ge=0, lt=1 << 22, description="Our gateway code inside the CMPP Msg_Ids we hand out."
    )
    cmpp_report_poll_seconds: float = Field(
        0.5, gt=0, description="How often a CMPP connection looks for status reports it owes."
    )

    @field_validator("push_retry_minutes", mode="before")
    @classmethod
    def _split_minutes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("push_retry_minutes")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        PushSchedule.from_minutes(value)  # the policy's own rule: positive, increasing
        return value

    @field_validator("tls_cert", "tls_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("trusted_proxies", "push_allowed_targets", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        toml_file = _toml_path(given.get("data_dir"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def push_schedule(self) -> PushSchedule:
        """The reply push timings as the policy in core takes them."""
        return PushSchedule.from_minutes(
            self.push_retry_minutes,
            self.push_pause_after_failures,
            self.push_failure_window_minutes,
            self.push_pause_minutes,
        )

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver smsgate uses filled in."""
        if self.database_url is None:
            return f"sqlite:///{(self.data_dir / 'smsgate.db').resolve()}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


def _toml_path(data_dir: str | Path | None) -> Path | None:
    """``SMSGATE_CONFIG``, else ``smsgate.toml`` in the data dir given (flag, then env)."""
    explicit = os.environ.get("SMSGATE_CONFIG")
    if explicit:
        return Path(explicit)
    if data_dir is None:
        data_dir = os.environ.get("SMSGATE_DATA_DIR", str(DEFAULT_DATA_DIR))
    candidate = Path(data_dir) / "smsgate.toml"
    return candidate if candidate.is_file() else None


def handed_over() -> Settings:
    """The settings of a server process: as its parent handed them over in ``HANDOVER_ENV``
    (``smsgate serve --workers N``), else read from the environment and TOML file."""
    serialized = os.environ.get(HANDOVER_ENV)
    if serialized:
        return Settings.model_validate_json(serialized)
    return Settings()


def sample_toml() -> str:
    """A commented sample config, generated from the fields so it never drifts."""
    lines = ["# smsgate configuration. Every key can also be set as SMSGATE_<KEY>."]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        lines.append(f"\n# {field.description}")
        lines.append(f"# {name} = {_toml_value(default)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if value is None:
        return '""  # unset'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

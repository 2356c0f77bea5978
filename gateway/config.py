"""
The gateway's configuration: one table of options, read from the command line
and from ``STOMP_GATEWAY_<OPTION>`` environment variables.

The command line wins over the environment; repeatable options take a
comma-separated list from the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import urllib.parse
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from .security import auth

__all__ = [
    "OPTIONS",
    "Config",
    "Option",
    "env_name",
    "options_table",
    "parse_args",
    "parse_command_line",
    "printable_config",
]

ENV_PREFIX = "STOMP_GATEWAY_"
MASK = "*****"
# The password of a URI: scheme://user:PASSWORD@host...
# What a MESSAGE may add to the frame it carries (headers, the chat JSON's own
# fields) and the small frames queued with it: the outbound queue must hold both.
FRAME_HEADROOM = 1024
_URI_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """Every setting of a gateway; see :data:`OPTIONS` for their meaning."""

    host: str = "127.0.0.1"
    port: int = 8080
    endpoint: tuple[str, ...] = ("/ws",)
    app_prefix: str = "/pub"
    broker_prefix: tuple[str, ...] = ("/sub",)
    allow_broker_send: bool = False
    duplicate_subscriptions: str = "replace"
    heartbeat_interval: int = 10_000
    heartbeat_floor: int = 1_000
    heartbeat_tolerance: float = 3.0
    connect_timeout: float = 10.0
    max_frame_size: int = 64 * 1024
    max_headers: int = 64
    max_header_line: int = 8 * 1024
    max_message_length: int = 0
    max_nickname_length: int = 100
    max_pending_acks: int = 10_000
    max_outbound_bytes: int = 512 * 1024
    outbound_low_water: int = 64 * 1024
    send_time_limit: float = 10.0
    max_bytes_before_connect: int = 16 * 1024
    max_subscriptions: int = 100
    max_connections_per_address: int = 100
    send_rate: float = 50.0
    send_burst: int = 100
    send_rate_policy: str = "throttle"
    handshake_timeout: float = 10.0
    allowed_origin: tuple[str, ...] = ()
    jwt_secret: str = ""
    jwt_public_key: str = ""
    jwt_jwks: str = ""
    jwt_algorithms: tuple[str, ...] = ("HS256", "RS256", "ES256")
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_leeway: float = 0.0
    jwt_member_claim: str = "sub"
    jwt_nickname_claim: str = "nickname"
    jwt_rooms_claim: str = "rooms"
    room_authorization: str = "none"
    room_authorization_url: str = ""
    room_authorization_cache: float = 10.0
    room_authorization_timeout: float = 2.0
    tls_cert: str = ""
    tls_key: str = ""
    history_size: int = 1000
    history_bytes: int = 4 * 2**20
    timezone: str = "UTC"
    permessage_deflate: bool = False
    demo_page: bool = True
    sockjs_heartbeat: int = 25_000
    drain_period: float = 2.0
    shutdown_timeout: float = 10.0
    log_level: str = "info"
    log_format: str = "text"
    event_loop: str = "auto"
    kafka_bootstrap: str = ""
    kafka_topic: str = "chat"
    kafka_partitions: int = 3
    kafka_replication_factor: int = 1
    partitioner: str = "modulo"
    kafka_send_timeout: float = 5.0
    fan_out_partitions: str = "all"
    workers: int = 1
    mongo_uri: str = ""
    max_persister_lag: int = 10_000
    recovery_timeout: float = 10.0
    recovery_buffer: int = 10_000
    recovery_buffer_bytes: int = 16 * 2**20
    service_token: str = ""
    member_header: str = ""
    presence_ttl: float = 15.0

    def __post_init__(self) -> None:
        if problem := self._inconsistency():
            raise ValueError(problem)

    @property
    def authentication(self) -> bool:
        """Whether CONNECT must carry a valid token: a key is configured."""
        return bool(self.jwt_secret or self.jwt_public_key or self.jwt_jwks)

    def _inconsistency(self) -> str | None:
        if sum(map(bool, (self.jwt_secret, self.jwt_public_key, self.jwt_jwks))) > 1:
            return "give one of --jwt-secret, --jwt-public-key, --jwt-jwks"
        if self.room_authorization != "none" and not self.authentication:
            return "--room-authorization needs authentication (a --jwt-... key)"
        if self.room_authorization == "http" and not self.room_authorization_url:
            return "--room-authorization http needs --room-authorization-url"
        if bool(self.tls_cert) != bool(self.tls_key):
            return "--tls-cert and --tls-key go together"
        if self.max_outbound_bytes < self.max_frame_size + FRAME_HEADROOM:
            return (
                f"--max-outbound-bytes ({self.max_outbound_bytes}) must be at least "
                f"--max-frame-size ({self.max_frame_size}) + {FRAME_HEADROOM}: else every "
                "subscriber of one large message is closed as a slow consumer"
            )
        if self.workers > 1 and not self.kafka_bootstrap:
            return (
                "--workers above 1 needs --kafka-bootstrap: workers are separate processes, "
                "and only Kafka carries messages between them"
            )
        return None


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"{value} is not positive")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{value} is negative")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"{value} is not a TCP port")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"{value} is not positive")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError(f"{value} is negative")
    return value


def _readable_file(text: str) -> str:
    """A path option: the file must exist and be readable now, not at first use."""
    if not text:  # unset
        return text
    try:
        with open(text, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot read {text!r}: {exc.strerror or exc}") from None
    return text


def _tolerance(text: str) -> float:
    value = float(text)
    if not value >= 1:
        raise ValueError(f"{value} is below 1")
    return value


def _http_url(text: str) -> str:
    if not text:  # unset
        return text
    url = urllib.parse.urlsplit(text)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    return text


def _path_prefix(text: str) -> str:
    if not text.startswith("/") or text != text.strip() or len(text) < 2:
        raise ValueError(f"{text!r} is not a path such as /sub")
    return text.rstrip("/") or "/"


def _timezone(text: str) -> str:
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {text!r}") from None
    return text


def _header_name(text: str) -> str:
    if text and not all(c.isascii() and (c.isalnum() or c in "-_") for c in text):
        raise ValueError(f"{text!r} is not a header name")
    return text


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean")


@dataclasses.dataclass(frozen=True)
class Option:
    """One option: its name, how to read it, what it means, and whether to mask it."""

    name: str
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    secret: bool = False  # --print-config shows ***** instead of the value

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")

    @property
    def default(self) -> Any:
        return getattr(Config(), self.field)

    @property
    def repeatable(self) -> bool:
        return isinstance(self.default, tuple)

    @property
    def flag(self) -> bool:
        return isinstance(self.default, bool)


OPTIONS: tuple[Option, ...] = (
    Option("host", "Address to listen on (the image uses 0.0.0.0).", metavar="ADDR"),
    Option("port", "TCP port for WebSocket and HTTP.", _port, metavar="PORT"),
    Option(
        "endpoint",
        "Path where STOMP over WebSocket is served; repeat for several.",
        _path_prefix,
        metavar="PATH",
    ),
    Option("app-prefix", "Prefix of application destinations (SEND /pub/...).", _path_prefix),
    Option(
        "broker-prefix",
        "Prefix of broker destinations clients subscribe to; repeat for several.",
        _path_prefix,
        metavar="PREFIX",
    ),
    Option(
        "allow-broker-send",
        "Relay client SENDs to broker destinations to their subscribers as-is "
        "(Spring SimpleBroker behaviour); refused by default.",
        _boolean,
    ),
    Option(
        "duplicate-subscriptions",
        "A second SUBSCRIBE to the same destination in one session: replace the "
        "first, allow both, or reject with an ERROR.",
        choices=("replace", "allow", "reject"),
    ),
    Option(
        "heartbeat-interval",
        "Milliseconds between client heart-beats the server asks for (0: none).",
        _non_negative_int,
        metavar="MS",
    ),
    Option(
        "heartbeat-floor",
        "Shortest interval, in milliseconds, at which the server sends heart-beats.",
        _positive_int,
        metavar="MS",
    ),
    Option(
        "heartbeat-tolerance",
        "A client silent for this many negotiated intervals is disconnected.",
        _tolerance,
        metavar="N",
    ),
    Option(
        "connect-timeout",
        "Seconds a new connection has to send CONNECT.",
        _positive_float,
        metavar="S",
    ),
    Option("max-frame-size", "Largest STOMP frame accepted, in bytes.", _positive_int, metavar="N"),
    Option("max-headers", "Most headers in one frame.", _positive_int, metavar="N"),
    Option("max-header-line", "Longest header line, in bytes.", _positive_int, metavar="N"),
    Option(
        "max-message-length",
        "Longest chat message text, in characters (0: no bound but --max-frame-size).",
        _non_negative_int,
        metavar="N",
    ),
    Option(
        "max-nickname-length",
        "Longest nickname of a chat message, in characters.",
        _positive_int,
        metavar="N",
    ),
    Option(
        "max-pending-acks",
        "Most unacknowledged messages per connection in client ack modes.",
        _positive_int,
        metavar="N",
    ),
    Option(
        "max-outbound-bytes",
        "Bytes queued for a connection above which it is closed at once as a slow consumer "
        "(at least --max-frame-size + 1024, so that one message always fits).",
        _positive_int,
        metavar="N",
    ),
    Option(
        "outbound-low-water",
        "Bytes queued for a connection above which it must drain within --send-time-limit.",
        _positive_int,
        metavar="N",
    ),
    Option(
        "send-time-limit",
        "Seconds a connection may stay above --outbound-low-water before it is closed "
        "as a slow consumer (Spring: 10).",
        _positive_float,
        metavar="S",
    ),
    Option(
        "max-bytes-before-connect",
        "Bytes a new connection may send before its CONNECT frame.",
        _positive_int,
        metavar="N",
    ),
    Option("max-subscriptions", "Most subscriptions per session.", _positive_int, metavar="N"),
    Option(
        "max-connections-per-address",
        "Most WebSocket connections from one remote address; more are refused with 429.",
        _positive_int,
        metavar="N",
    ),
    Option(
        "send-rate",
        "SENDs per second a session may sustain (token bucket); see --send-rate-policy.",
        _positive_float,
        metavar="N",
    ),
    Option(
        "send-burst", "SENDs a session may make at once (bucket size).", _positive_int, metavar="N"
    ),
    Option(
        "send-rate-policy",
        "A session over --send-rate: throttle (stop reading its socket until the bucket "
        "refills; nothing is lost) or reject (the SEND gets an application error).",
        choices=("throttle", "reject"),
    ),
    Option(
        "handshake-timeout",
        "Seconds a new TCP connection has to complete the WebSocket handshake.",
        _positive_float,
        metavar="S",
    ),
    Option(
        "allowed-origin",
        "Origin allowed to open a browser WebSocket and read the HTTP resources with "
        "credentials (e.g. https://chat.example.com); repeat for several; none: all.",
        metavar="ORIGIN",
    ),
    Option(
        "jwt-secret",
        "Shared secret of HS256 tokens; turns authentication on.",
        metavar="SECRET",
        secret=True,
    ),
    Option(
        "jwt-public-key",
        "PEM file with the public key of RS256/ES256 tokens; turns authentication on.",
        auth.public_key_file,
        metavar="FILE",
    ),
    Option(
        "jwt-jwks",
        "JWKS (JSON) file with the public keys of RS256/ES256 tokens; turns authentication on.",
        auth.jwks_file,
        metavar="FILE",
    ),
    Option(
        "jwt-algorithms",
        "Token algorithms accepted (those matching the configured key); repeat for several.",
        choices=auth.ALGORITHMS,
        metavar="ALG",
    ),
    Option("jwt-issuer", "Required iss claim (none: not checked).", metavar="ISS"),
    Option("jwt-audience", "Required aud claim (none: not checked).", metavar="AUD"),
    Option(
        "jwt-leeway",
        "Seconds of clock skew allowed when checking exp and nbf.",
        _non_negative_float,
        metavar="S",
    ),
    Option(
        "jwt-member-claim",
        "Claim holding the member id (an integer, or a string of digits).",
        metavar="CLAIM",
    ),
    Option(
        "jwt-nickname-claim",
        "Claim holding the nickname stamped on the member's messages (optional in tokens).",
        metavar="CLAIM",
    ),
    Option(
        "jwt-rooms-claim",
        "Claim listing the member's room ids, for --room-authorization claim.",
        metavar="CLAIM",
    ),
    Option(
        "room-authorization",
        "Who may SUBSCRIBE to and SEND to a room: anyone, the members the token's rooms "
        "claim lists, or whatever --room-authorization-url answers 200 for.",
        choices=("none", "claim", "http"),
    ),
    Option(
        "room-authorization-url",
        "URL asked GET ?memberId=&roomId= for --room-authorization http (200 allows, "
        "anything else denies).",
        _http_url,
        metavar="URL",
    ),
    Option(
        "room-authorization-cache",
        "Seconds an answer of --room-authorization-url is reused (0: not cached).",
        _non_negative_float,
        metavar="S",
    ),
    Option(
        "room-authorization-timeout",
        "Seconds --room-authorization-url has to answer before access is denied.",
        _positive_float,
        metavar="S",
    ),
    Option(
        "tls-cert",
        "PEM certificate chain for serving wss:// and https:// directly (with --tls-key).",
        _readable_file,
        metavar="FILE",
    ),
    Option("tls-key", "PEM private key of --tls-cert.", _readable_file, metavar="FILE"),
    Option(
        "history-size",
        "Messages kept per room by the in-memory store.",
        _positive_int,
        metavar="N",
    ),
    Option(
        "history-bytes",
        "Bytes of messages (their strings' memory) kept per room by the in-memory store; "
        "the oldest go first, the newest always stays.",
        _positive_int,
        metavar="N",
    ),
    Option(
        "timezone",
        "Time zone of createAt (e.g. Asia/Seoul, as the seed).",
        _timezone,
        metavar="ZONE",
    ),
    Option("permessage-deflate", "Offer WebSocket compression (RFC 7692).", _boolean),
    Option("demo-page", "Serve the demo chat page at / and its files under /static/.", _boolean),
    Option(
        "sockjs-heartbeat",
        "Milliseconds between SockJS heart-beat frames on sessions without STOMP heart-beats.",
        _positive_int,
        metavar="MS",
    ),
    Option(
        "drain-period",
        "Seconds connected clients keep being served after SIGTERM while /readyz "
        "answers 503, before they are told the server is restarting.",
        _non_negative_float,
        metavar="S",
    ),
    Option(
        "shutdown-timeout",
        "Seconds to close sessions on SIGTERM before exiting anyway.",
        _positive_float,
        metavar="S",
    ),
    Option(
        "log-level",
        "Logging level.",
        choices=("debug", "info", "warning", "error"),
    ),
    Option(
        "log-format",
        "Log lines as text, or as one JSON object per line.",
        choices=("text", "json"),
    ),
    Option(
        "event-loop",
        "asyncio event loop: uvloop, asyncio, or auto (uvloop when installed).",
        choices=("auto", "asyncio", "uvloop"),
    ),
    Option(
        "kafka-bootstrap",
        "Kafka brokers, HOST:PORT[,...]; switches the bus from in-memory to Kafka.",
        metavar="SERVERS",
    ),
    Option("kafka-topic", "Kafka topic carrying the chat messages.", metavar="TOPIC"),
    Option(
        "kafka-partitions",
        "Partitions the topic is created with and must have at least.",
        _positive_int,
        metavar="N",
    ),
    Option(
        "kafka-replication-factor",
        "Replication factor of the topic when the gateway creates it.",
        _positive_int,
        metavar="N",
    ),
    Option(
        "partitioner",
        "Partition of a room: modulo (roomId % partitions, as the seed), hash "
        "(Kafka's murmur2 of the key) or nginx-hash (nginx's upstream hash of the "
        "key, for partition-affine balancing).",
        choices=("modulo", "hash", "nginx-hash"),
    ),
    Option(
        "kafka-send-timeout",
        "Seconds Kafka has to acknowledge a message before the sender is told it failed.",
        _positive_float,
        metavar="S",
    ),
    Option(
        "fan-out-partitions",
        "Partitions an instance reads: all (every record, as the seed) or interest (only "
        "those holding a room with a local subscriber).",
        choices=("all", "interest"),
    ),
    Option(
        "workers",
        "Processes serving the port (SO_REUSEPORT), each a full instance; above 1 needs "
        "--kafka-bootstrap.",
        _positive_int,
        metavar="N",
    ),
    Option(
        "mongo-uri",
        "MongoDB connection string (database from the URI, else chat); switches the "
        "store from in-memory to MongoDB.",
        metavar="URI",
    ),
    Option(
        "max-persister-lag",
        "Messages not yet stored above which /readyz answers 503.",
        _positive_int,
        metavar="N",
    ),
    Option(
        "recovery-timeout",
        "Seconds a recovery (store, Kafka log) may take before it answers x-recovered: false.",
        _positive_float,
        metavar="SECONDS",
    ),
    Option(
        "recovery-buffer",
        "Newest messages (rooms with a local subscriber) kept for recovery while the store "
        "catches up.",
        _non_negative_int,
        metavar="N",
    ),
    Option(
        "recovery-buffer-bytes",
        "Bytes of messages (their JSON) the recovery buffer keeps; the oldest go first.",
        _positive_int,
        metavar="N",
    ),
    Option(
        "service-token",
        "Bearer token services present to POST /v1/api/chat/{roomId}/messages; "
        "empty: that endpoint answers 403.",
        metavar="TOKEN",
        secret=True,
    ),
    Option(
        "member-header",
        "CONNECT header naming the member (an integer id) when no token identifies "
        "the session, e.g. x-member-id; empty: not read.",
        _header_name,
        metavar="NAME",
    ),
    Option(
        "presence-ttl",
        "Seconds an instance's presence lease lasts without renewal: the longest a "
        "crashed instance's members stay listed.",
        _positive_float,
        metavar="S",
    ),
)


def env_name(option: Option) -> str:
    """Return the environment variable that sets ``option``."""
    return ENV_PREFIX + option.field.upper()


def _from_env(option: Option, environ: Mapping[str, str]) -> Any:
    raw = environ.get(env_name(option))
    if raw is None:
        return option.default
    if option.repeatable:
        values = tuple(_check(option, part.strip()) for part in raw.split(",") if part.strip())
        if not values and option.default:  # an empty list stands only for no default
            raise ValueError("needs at least one value")
        return values
    return _check(option, raw)


def _check(option: Option, raw: str) -> Any:
    value = option.parse(raw)
    if option.choices and value not in option.choices:
        raise ValueError(f"{raw!r} is not one of {', '.join(option.choices)}")
    return value


class _Parser(argparse.ArgumentParser):
    """Fails fast with one clear line on stderr (no usage dump), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="stomp-gateway",
        description="STOMP 1.2 over WebSocket chat gateway. Every option can also be "
        f"set with an environment variable {ENV_PREFIX}<OPTION>, e.g. {ENV_PREFIX}PORT.",
    )
    for option in OPTIONS:
        try:
            default = _from_env(option, environ)
        except ValueError as exc:
            parser.error(f"{env_name(option)}: {exc}")
        help_text = f"{option.help} [env {env_name(option)}; default: {_show(option.default)}]"
        help_text = help_text.replace("%", "%%")  # argparse formats help with %
        if option.flag:
            parser.add_argument(
                f"--{option.name}",
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
            continue
        parser.add_argument(
            f"--{option.name}",
            type=_argparse_type(option),
            action="append" if option.repeatable else "store",
            default=None if option.repeatable else default,
            choices=option.choices or None,
            metavar=option.metavar,
            help=help_text,
        )
        if option.repeatable:
            parser.set_defaults(**{f"{option.field}_env": default})
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="Print the effective configuration (secrets masked) and exit.",
    )
    return parser


def _argparse_type(option: Option) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return option.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = option.name
    return convert


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Return the configuration from ``argv`` and ``environ`` (exits on errors)."""
    return parse_command_line(argv, environ)[0]


def parse_command_line(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Config, bool]:
    """Return the configuration, and whether ``--print-config`` was given (exits on errors)."""
    environ = os.environ if environ is None else environ
    parser = build_parser(environ)
    namespace = parser.parse_args(argv)
    values = {}
    for option in OPTIONS:
        value = getattr(namespace, option.field)
        if option.repeatable:
            value = tuple(value) if value else getattr(namespace, f"{option.field}_env")
        values[option.field] = value
    try:
        return Config(**values), bool(namespace.print_config)
    except ValueError as exc:
        parser.error(str(exc))


def printable_config(config: Config) -> str:
    """
    The effective configuration as ``STOMP_GATEWAY_<OPTION>=value`` lines, with
    secret options and the passwords of URIs masked.
    """
    lines = []
    for option in OPTIONS:
        value = _show(getattr(config, option.field))
        if option.secret and value:
            value = MASK
        lines.append(f"{env_name(option)}={_mask_uri_password(value)}")
    return "\n".join(lines)


def _mask_uri_password(text: str) -> str:
    return _URI_PASSWORD.sub(lambda match: f"{match[1]}{MASK}@", text)


def options_table() -> str:
    """Return the Markdown table of options that the README carries."""
    rows = [
        "| Option | Environment variable | Default | Meaning |",
        "|---|---|---|---|",
    ]
    for option in OPTIONS:
        meaning = option.help
        if option.choices:
            meaning += " One of " + ", ".join(f"`{choice}`" for choice in option.choices) + "."
        rows.append(
            f"| `--{option.name}` | `{env_name(option)}` | `{_show(option.default)}` | {meaning} |"
        )
    return "\n".join(rows)

"""
The gateway's configuration: every setting declared once, as a field of a
section below, and read from the command line and from
``STOMP_GATEWAY_<OPTION>`` environment variables.

:class:`Config` is flat (``config.max_frame_size``) and assembled from the
sections; its fields, in order, are the options (:data:`OPTIONS`), generated
from the fields' metadata (:mod:`gateway.options`). A setting a component owns
(``Limits``, ``HeartBeatPolicy``, ``KafkaSettings``...) takes the component's
default, and :meth:`Config.component` builds the component from it.

The command line wins over the environment; repeatable options take a
comma-separated list from the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NoReturn, TypeVar

from kafka_bridge.settings import FanOutPartitions, KafkaSettings, Partitioner
from persistence import InMemoryStore
from protocol import DuplicatePolicy, HeartBeatPolicy, Limits, SubscriptionPolicy

from .chat.recovery import RecentMessages
from .options import (
    boolean,
    header_name,
    http_url,
    non_negative_float,
    non_negative_int,
    part_of,
    path_prefix,
    positive_float,
    positive_int,
    readable_file,
    setting,
    tcp_port,
    time_zone,
    tolerance,
    usage,
)
from .security.auth import JwtSettings
from .transport.framing import SOCKJS_HEARTBEAT_MS

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
# What a MESSAGE may add to the frame it carries (headers, the chat JSON's own
# fields) and the small frames queued with it: the outbound queue must hold both.
FRAME_HEADROOM = 1024
# The password of a URI: scheme://user:PASSWORD@host...
_URI_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")

T = TypeVar("T")
SendRatePolicy = Literal["throttle", "reject"]
RoomAuthorization = Literal["none", "claim", "http"]
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]
EventLoop = Literal["auto", "asyncio", "uvloop"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ListenSettings:
    """Where the gateway listens and serves STOMP."""

    host: str = setting(
        "127.0.0.1", "Address to listen on (the image uses 0.0.0.0).", metavar="ADDR"
    )
    port: int = setting(8080, "TCP port for WebSocket and HTTP.", tcp_port, metavar="PORT")
    endpoint: tuple[str, ...] = setting(
        ("/ws",),
        "Path where STOMP over WebSocket is served; repeat for several.",
        path_prefix,
        metavar="PATH",
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class RoutingSettings:
    """Which destinations are the application's and which the broker's."""

    app_prefix: str = setting(
        "/pub", "Prefix of application destinations (SEND /pub/...).", path_prefix
    )
    broker_prefix: tuple[str, ...] = setting(
        ("/sub",),
        "Prefix of broker destinations clients subscribe to; repeat for several.",
        path_prefix,
        metavar="PREFIX",
    )
    allow_broker_send: bool = setting(
        False,
        "Relay client SENDs to broker destinations to their subscribers as-is "
        "(Spring SimpleBroker behaviour); refused by default.",
        boolean,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class SessionSettings:
    """What one STOMP session is given and may hold: heart-beats, frames, queues."""

    duplicate_subscriptions: DuplicatePolicy = part_of(
        SubscriptionPolicy,
        "duplicates",
        "A second SUBSCRIBE to the same destination in one session: replace the "
        "first, allow both, or reject with an ERROR.",
    )
    heartbeat_interval: int = part_of(
        HeartBeatPolicy,
        "receive_ms",
        "Milliseconds between client heart-beats the server asks for (0: none).",
        non_negative_int,
        metavar="MS",
    )
    heartbeat_floor: int = part_of(
        HeartBeatPolicy,
        "send_floor_ms",
        "Shortest interval, in milliseconds, at which the server sends heart-beats.",
        positive_int,
        metavar="MS",
    )
    heartbeat_tolerance: float = part_of(
        HeartBeatPolicy,
        "tolerance",
        "A client silent for this many negotiated intervals is disconnected.",
        tolerance,
        metavar="N",
    )
    connect_timeout: float = setting(
        10.0, "Seconds a new connection has to send CONNECT.", positive_float, metavar="S"
    )
    max_frame_size: int = part_of(
        Limits,
        "max_frame_size",
        "Largest STOMP frame accepted, in bytes.",
        positive_int,
        metavar="N",
    )
    max_headers: int = part_of(
        Limits, "max_headers", "Most headers in one frame.", positive_int, metavar="N"
    )
    max_header_line: int = part_of(
        Limits, "max_header_line", "Longest header line, in bytes.", positive_int, metavar="N"
    )
    max_message_length: int = setting(
        0,
        "Longest chat message text, in characters (0: no bound but --max-frame-size).",
        non_negative_int,
        metavar="N",
    )
    max_nickname_length: int = setting(
        100,
        "Longest nickname of a chat message, in characters.",
        positive_int,
        metavar="N",
    )
    max_pending_acks: int = part_of(
        SubscriptionPolicy,
        "max_pending_acks",
        "Most unacknowledged messages per connection in client ack modes.",
        positive_int,
        metavar="N",
    )
    max_outbound_bytes: int = setting(
        512 * 1024,
        "Bytes queued for a connection above which it is closed at once as a slow consumer "
        f"(at least --max-frame-size + {FRAME_HEADROOM}, so that one message always fits).",
        positive_int,
        metavar="N",
    )
    outbound_low_water: int = setting(
        64 * 1024,
        "Bytes queued for a connection above which it must drain within --send-time-limit.",
        positive_int,
        metavar="N",
    )
    send_time_limit: float = setting(
        10.0,
        "Seconds a connection may stay above --outbound-low-water before it is closed "
        "as a slow consumer (Spring: 10).",
        positive_float,
        metavar="S",
    )
    max_bytes_before_connect: int = part_of(
        Limits,
        "max_bytes_before_connect",
        "Bytes a new connection may send before its CONNECT frame.",
        positive_int,
        metavar="N",
    )
    max_subscriptions: int = part_of(
        SubscriptionPolicy,
        "max_subscriptions",
        "Most subscriptions per session.",
        positive_int,
        metavar="N",
    )

    def outbound_too_small(self) -> str | None:
        """Why one message of ``max_frame_size`` may not fit the outbound queue, or None."""
        if self.max_outbound_bytes >= self.max_frame_size + FRAME_HEADROOM:
            return None
        return (
            f"--max-outbound-bytes ({self.max_outbound_bytes}) must be at least "
            f"--max-frame-size ({self.max_frame_size}) + {FRAME_HEADROOM}: else every "
            "subscriber of one large message is closed as a slow consumer"
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdmissionSettings:
    """Who may connect, from where, and how fast a session may send."""

    max_connections_per_address: int = setting(
        100,
        "Most WebSocket connections from one remote address; more are refused with 429.",
        positive_int,
        metavar="N",
    )
    send_rate: float = setting(
        50.0,
        "SENDs per second a session may sustain (token bucket); see --send-rate-policy.",
        positive_float,
        metavar="N",
    )
    send_burst: int = setting(
        100, "SENDs a session may make at once (bucket size).", positive_int, metavar="N"
    )
    send_rate_policy: SendRatePolicy = setting(
        "throttle",
        "A session over --send-rate: throttle (stop reading its socket until the bucket "
        "refills; nothing is lost) or reject (the SEND gets an application error).",
    )
    handshake_timeout: float = setting(
        10.0,
        "Seconds a new TCP connection has to complete the WebSocket handshake.",
        positive_float,
        metavar="S",
    )
    allowed_origin: tuple[str, ...] = setting(
        (),
        "Origin allowed to open a browser WebSocket and read the HTTP resources with "
        "credentials (e.g. https://chat.example.com); repeat for several; none: all.",
        metavar="ORIGIN",
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class RoomAuthorizationSettings:
    """Who may SUBSCRIBE to a room and SEND to it."""

    room_authorization: RoomAuthorization = setting(
        "none",
        "Who may SUBSCRIBE to and SEND to a room: anyone, the members the token's rooms "
        "claim lists, or whatever --room-authorization-url answers 200 for.",
    )
    room_authorization_url: str = setting(
        "",
        "URL asked GET ?memberId=&roomId= for --room-authorization http (200 allows, "
        "anything else denies).",
        http_url,
        metavar="URL",
    )
    room_authorization_cache: float = setting(
        10.0,
        "Seconds an answer of --room-authorization-url is reused (0: not cached).",
        non_negative_float,
        metavar="S",
    )
    room_authorization_timeout: float = setting(
        2.0,
        "Seconds --room-authorization-url has to answer before access is denied.",
        positive_float,
        metavar="S",
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class TlsSettings:
    """The certificate for serving wss:// and https:// directly."""

    tls_cert: str = setting(
        "",
        "PEM certificate chain for serving wss:// and https:// directly (with --tls-key).",
        readable_file,
        metavar="FILE",
    )
    tls_key: str = setting("", "PEM private key of --tls-cert.", readable_file, metavar="FILE")


@dataclasses.dataclass(frozen=True, kw_only=True)
class HistorySettings:
    """What the in-memory store keeps, and the time zone of createAt."""

    history_size: int = part_of(
        InMemoryStore,
        "per_room",
        "Messages kept per room by the in-memory store.",
        positive_int,
        metavar="N",
    )
    history_bytes: int = part_of(
        InMemoryStore,
        "bytes_per_room",
        "Bytes of messages (their strings' memory) kept per room by the in-memory store; "
        "the oldest go first, the newest always stays.",
        positive_int,
        metavar="N",
    )
    timezone: str = setting(
        "UTC",
        "Time zone of createAt (e.g. Asia/Seoul, as the seed).",
        time_zone,
        metavar="ZONE",
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServingSettings:
    """What the port offers besides raw STOMP: compression, the demo page, SockJS."""

    permessage_deflate: bool = setting(False, "Offer WebSocket compression (RFC 7692).", boolean)
    demo_page: bool = setting(
        True, "Serve the demo chat page at / and its files under /static/.", boolean
    )
    sockjs_heartbeat: int = setting(
        SOCKJS_HEARTBEAT_MS,
        "Milliseconds between SockJS heart-beat frames on sessions without STOMP heart-beats.",
        positive_int,
        metavar="MS",
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProcessSettings:
    """The process: how it stops, logs, and which event loop it runs."""

    drain_period: float = setting(
        2.0,
        "Seconds connected clients keep being served after SIGTERM while /readyz "
        "answers 503, before they are told the server is restarting.",
        non_negative_float,
        metavar="S",
    )
    shutdown_timeout: float = setting(
        10.0,
        "Seconds to close sessions on SIGTERM before exiting anyway.",
        positive_float,
        metavar="S",
    )
    log_level: LogLevel = setting("info", "Logging level.")
    log_format: LogFormat = setting("text", "Log lines as text, or as one JSON object per line.")
    event_loop: EventLoop = setting(
        "auto", "asyncio event loop: uvloop, asyncio, or auto (uvloop when installed)."
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScaleOutSettings:
    """The Kafka bus between instances, and the worker processes it lets share a port."""

    kafka_bootstrap: str = part_of(
        KafkaSettings,
        "bootstrap",
        "Kafka brokers, HOST:PORT[,...]; switches the bus from in-memory to Kafka.",
        metavar="SERVERS",
        default="",
    )
    kafka_topic: str = part_of(
        KafkaSettings, "topic", "Kafka topic carrying the chat messages.", metavar="TOPIC"
    )
    kafka_partitions: int = part_of(
        KafkaSettings,
        "partitions",
        "Partitions the topic is created with and must have at least.",
        positive_int,
        metavar="N",
    )
    kafka_replication_factor: int = part_of(
        KafkaSettings,
        "replication_factor",
        "Replication factor of the topic when the gateway creates it.",
        positive_int,
        metavar="N",
    )
    partitioner: Partitioner = part_of(
        KafkaSettings,
        "partitioner",
        "Partition of a room: modulo (roomId % partitions, as the seed), hash "
        "(Kafka's murmur2 of the key) or nginx-hash (nginx's upstream hash of the "
        "key, for partition-affine balancing).",
    )
    kafka_send_timeout: float = part_of(
        KafkaSettings,
        "send_timeout",
        "Seconds Kafka has to acknowledge a message before the sender is told it failed.",
        positive_float,
        metavar="S",
    )
    fan_out_partitions: FanOutPartitions = part_of(
        KafkaSettings,
        "fan_out_partitions",
        "Partitions an instance reads: all (every record, as the seed) or interest (only "
        "those holding a room with a local subscriber).",
    )
    workers: int = setting(
        1,
        "Processes serving the port (SO_REUSEPORT), each a full instance; above 1 needs "
        "--kafka-bootstrap.",
        positive_int,
        metavar="N",
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class MongoSettings:
    """The MongoDB store, and how far behind the bus it may fall."""

    mongo_uri: str = setting(
        "",
        "MongoDB connection string (database from the URI, else chat); switches the "
        "store from in-memory to MongoDB.",
        metavar="URI",
    )
    max_persister_lag: int = setting(
        10_000,
        "Messages not yet stored above which /readyz answers 503.",
        positive_int,
        metavar="N",
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecoverySettings:
    """How a resubscribing client gets the messages it missed."""

    recovery_timeout: float = setting(
        10.0,
        "Seconds a recovery (store, Kafka log) may take before it answers x-recovered: false.",
        positive_float,
        metavar="SECONDS",
    )
    recovery_buffer: int = part_of(
        RecentMessages,
        "capacity",
        "Newest messages (rooms with a local subscriber) kept for recovery while the store "
        "catches up.",
        non_negative_int,
        metavar="N",
        default=10_000,
    )
    recovery_buffer_bytes: int = part_of(
        RecentMessages,
        "max_bytes",
        "Bytes of messages (their JSON) the recovery buffer keeps; the oldest go first.",
        positive_int,
        metavar="N",
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class BackendSettings:
    """What the chat's other services use: the service token, the member header, presence."""

    service_token: str = setting(
        "",
        "Bearer token services present to POST /v1/api/chat/{roomId}/messages; "
        "empty: that endpoint answers 403.",
        metavar="TOKEN",
        secret=True,
    )
    member_header: str = setting(
        "",
        "CONNECT header naming the member (an integer id) when no token identifies "
        "the session, e.g. x-member-id; empty: not read.",
        header_name,
        metavar="NAME",
    )
    presence_ttl: float = setting(
        15.0,
        "Seconds an instance's presence lease lasts without renewal: the longest a "
        "crashed instance's members stay listed.",
        positive_float,
        metavar="S",
    )


# A dataclass lists the fields of its last base first: the sections go in
# reverse, so that the options keep the order of --help, first to last.
@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(
    BackendSettings,
    RecoverySettings,
    MongoSettings,
    ScaleOutSettings,
    ProcessSettings,
    ServingSettings,
    HistorySettings,
    TlsSettings,
    RoomAuthorizationSettings,
    JwtSettings,
    AdmissionSettings,
    SessionSettings,
    RoutingSettings,
    ListenSettings,
):
    """Every setting of a gateway; see :data:`OPTIONS` for their meaning."""

    def __post_init__(self) -> None:
        if problem := self._inconsistency():
            raise ValueError(problem)

    def component(self, owner: Callable[..., T]) -> T:
        """Build ``owner`` (``Limits``, ``KafkaSettings``...) from the settings that are its."""
        arguments = {}
        for field in dataclasses.fields(self):
            declared = usage(field)
            if declared.owner is owner:
                arguments[declared.parameter] = getattr(self, field.name)
        return owner(**arguments)

    def _inconsistency(self) -> str | None:
        if problem := self.key_conflict():
            return problem
        if self.room_authorization != "none" and not self.authentication:
            return "--room-authorization needs authentication (a --jwt-... key)"
        if self.room_authorization == "http" and not self.room_authorization_url:
            return "--room-authorization http needs --room-authorization-url"
        if bool(self.tls_cert) != bool(self.tls_key):
            return "--tls-cert and --tls-key go together"
        if problem := self.outbound_too_small():
            return problem
        if self.workers > 1 and not self.kafka_bootstrap:
            return (
                "--workers above 1 needs --kafka-bootstrap: workers are separate processes, "
                "and only Kafka carries messages between them"
            )
        return None


@dataclasses.dataclass(frozen=True)
class Option:
    """One option: its name, how to read it, what it means, and whether to mask it."""

    name: str
    help: str
    default: Any
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    secret: bool = False  # --print-config shows ***** instead of the value

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")

    @property
    def repeatable(self) -> bool:
        return isinstance(self.default, tuple)

    @property
    def flag(self) -> bool:
        return isinstance(self.default, bool)


def _options() -> tuple[Option, ...]:
    """The options of :class:`Config`'s fields, in order, from their declarations."""
    types = typing.get_type_hints(Config)
    options = []
    for field in dataclasses.fields(Config):
        declared = usage(field)
        options.append(
            Option(
                name=field.name.replace("_", "-"),
                help=declared.help,
                default=field.default,
                parse=declared.parse,
                choices=_choices(types[field.name]),
                metavar=declared.metavar,
                secret=declared.secret,
            )
        )
    return tuple(options)


def _choices(hint: Any) -> tuple[str, ...]:
    """The values of a ``Literal`` type, or of the ``Literal`` a tuple repeats; else ()."""
    if typing.get_origin(hint) is tuple:
        hint = typing.get_args(hint)[0]
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else ()


OPTIONS = _options()


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
    """Return the Markdown table of options that docs/configuration.md carries."""
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

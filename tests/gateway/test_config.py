"""Unit tests for :mod:`gateway.config`: defaults, environment, command line, errors."""

from __future__ import annotations

import dataclasses
import inspect
import string
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway import Config, Gateway, options, parse_args
from gateway.config import (
    ENV_PREFIX,
    OPTIONS,
    Option,
    env_name,
    printable_config,
)
from gateway.options import readable_file as _readable_file
from gateway.transport.framing import SockJSFraming
from kafka_bridge.settings import KafkaSettings, Partitioner
from persistence import InMemoryStore
from protocol import HeartBeatPolicy, Limits


def env(**values: str) -> dict[str, str]:
    """Return an environment with ``STOMP_GATEWAY_<NAME>`` variables."""
    return {ENV_PREFIX + name.upper(): value for name, value in values.items()}


def test_defaults() -> None:
    config = parse_args([], {})
    assert config == Config()
    assert config.host == "127.0.0.1"
    assert config.port == 8080
    assert config.endpoint == ("/ws",)
    assert config.app_prefix == "/pub"
    assert config.broker_prefix == ("/sub",)
    assert config.allow_broker_send is False
    assert config.duplicate_subscriptions == "replace"
    assert config.heartbeat_interval == 10_000
    assert config.heartbeat_floor == 1_000
    assert config.heartbeat_tolerance == 3.0
    assert config.connect_timeout == 10.0
    assert config.max_frame_size == 65_536
    assert config.max_headers == 64
    assert config.max_header_line == 8_192
    assert config.max_message_length == 0  # off: the frame is the bound, as in the seed
    assert config.max_nickname_length == 100
    assert config.max_pending_acks == 10_000
    assert config.max_outbound_bytes == 524_288
    assert config.history_size == 1000
    assert config.history_bytes == 4 * 2**20
    assert config.recovery_buffer_bytes == 16 * 2**20
    assert config.send_rate_policy == "throttle"
    assert config.timezone == "UTC"
    assert config.permessage_deflate is False
    assert config.shutdown_timeout == 10.0
    assert config.log_level == "info"


def test_every_field_has_an_option() -> None:
    assert [option.field for option in OPTIONS] == [
        field.name for field in dataclasses.fields(Config)
    ]
    for option in OPTIONS:
        assert env_name(option) == "STOMP_GATEWAY_" + option.name.replace("-", "_").upper()
        assert option.default == getattr(Config(), option.field)


def test_the_process_environment_is_not_read_when_one_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STOMP_GATEWAY_PORT", "1234")
    assert parse_args([], {}).port == 8080
    assert parse_args([]).port == 1234


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (env(host="0.0.0.0"), {"host": "0.0.0.0"}),
        (env(port="9000"), {"port": 9000}),
        (env(port="0"), {"port": 0}),
        (env(endpoint="/stomp"), {"endpoint": ("/stomp",)}),
        (env(endpoint="/ws,/stomp"), {"endpoint": ("/ws", "/stomp")}),
        (env(endpoint=" /ws , /stomp ,, "), {"endpoint": ("/ws", "/stomp")}),
        (env(app_prefix="/app/"), {"app_prefix": "/app"}),
        (env(broker_prefix="/sub/,/topic"), {"broker_prefix": ("/sub", "/topic")}),
        (env(duplicate_subscriptions="reject"), {"duplicate_subscriptions": "reject"}),
        (env(heartbeat_interval="0"), {"heartbeat_interval": 0}),
        (env(heartbeat_floor="250"), {"heartbeat_floor": 250}),
        (env(heartbeat_tolerance="1"), {"heartbeat_tolerance": 1.0}),
        (env(heartbeat_tolerance="2.5"), {"heartbeat_tolerance": 2.5}),
        (env(connect_timeout="0.25"), {"connect_timeout": 0.25}),
        (env(max_frame_size="1024"), {"max_frame_size": 1024}),
        (env(max_outbound_bytes="99999"), {"max_outbound_bytes": 99999}),
        (env(send_rate_policy="reject"), {"send_rate_policy": "reject"}),
        (env(max_message_length="0"), {"max_message_length": 0}),
        (env(history_size="5"), {"history_size": 5}),
        (env(timezone="Asia/Seoul"), {"timezone": "Asia/Seoul"}),
        (env(log_level="debug"), {"log_level": "debug"}),
        (env(shutdown_timeout="3"), {"shutdown_timeout": 3.0}),
        (env(port="9000", timezone="Asia/Seoul"), {"port": 9000, "timezone": "Asia/Seoul"}),
        ({"UNRELATED": "1", "STOMP_GATEWAY_NOPE": "x"}, {}),
    ],
)
def test_environment(environ: dict[str, str], expected: dict[str, Any]) -> None:
    assert parse_args([], environ) == dataclasses.replace(Config(), **expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        (" On ", True),
        ("0", False),
        ("false", False),
        ("False", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_boolean_environment(value: str, expected: bool) -> None:
    config = parse_args([], env(allow_broker_send=value, permessage_deflate=value))
    assert config.allow_broker_send is expected
    assert config.permessage_deflate is expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--port", "9001"], {"port": 9001}),
        (["--endpoint", "/a", "--endpoint", "/b"], {"endpoint": ("/a", "/b")}),
        (["--broker-prefix", "/topic"], {"broker_prefix": ("/topic",)}),
        (["--allow-broker-send"], {"allow_broker_send": True}),
        (["--no-allow-broker-send"], {"allow_broker_send": False}),
        (["--permessage-deflate"], {"permessage_deflate": True}),
        (["--duplicate-subscriptions", "allow"], {"duplicate_subscriptions": "allow"}),
        (["--heartbeat-tolerance", "1.5"], {"heartbeat_tolerance": 1.5}),
        (["--timezone", "Europe/Paris"], {"timezone": "Europe/Paris"}),
        (["--port=7000", "--host=::1"], {"port": 7000, "host": "::1"}),
        (["--partitioner", "nginx-hash"], {"partitioner": "nginx-hash"}),
    ],
)
def test_command_line(argv: list[str], expected: dict[str, Any]) -> None:
    assert parse_args(argv, {}) == dataclasses.replace(Config(), **expected)


def test_command_line_beats_environment() -> None:
    environ = env(
        port="9000",
        endpoint="/x,/y",
        allow_broker_send="true",
        permessage_deflate="false",
        timezone="Asia/Seoul",
    )
    config = parse_args(
        [
            "--port",
            "9001",
            "--endpoint",
            "/z",
            "--no-allow-broker-send",
            "--permessage-deflate",
        ],
        environ,
    )
    assert config.port == 9001
    assert config.endpoint == ("/z",)
    assert config.allow_broker_send is False
    assert config.permessage_deflate is True
    assert config.timezone == "Asia/Seoul"  # not on the command line: the environment's
    assert parse_args([], environ).endpoint == ("/x", "/y")


@pytest.mark.parametrize(
    "environ",
    [
        env(port="abc"),
        env(port="70000"),
        env(port="-1"),
        env(port=""),
        env(endpoint="ws"),
        env(endpoint="/ws,stomp"),
        env(endpoint="/"),
        env(app_prefix="pub"),
        env(broker_prefix="/sub,topic"),
        env(allow_broker_send="maybe"),
        env(permessage_deflate="2"),
        env(duplicate_subscriptions="ignore"),
        env(heartbeat_interval="-1"),
        env(heartbeat_interval="1.5"),
        env(heartbeat_floor="0"),
        env(heartbeat_tolerance="0.5"),
        env(heartbeat_tolerance="abc"),
        env(connect_timeout="0"),
        env(connect_timeout="nan"),
        env(max_frame_size="0"),
        env(max_headers="-5"),
        env(max_message_length="ten"),
        env(max_message_length="-1"),
        env(max_nickname_length="0"),
        env(send_rate_policy="drop"),
        env(history_bytes="0"),
        env(history_size="0"),
        env(timezone="Mars/Olympus_Mons"),
        env(timezone=""),
        env(log_level="verbose"),
        env(log_level="INFO"),
        env(shutdown_timeout="-1"),
    ],
    ids=lambda environ: ",".join(f"{k[len(ENV_PREFIX) :]}={v}" for k, v in environ.items()),
)
def test_invalid_environment_exits_2(
    environ: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args([], environ)
    assert info.value.code == 2
    [name] = environ
    assert name in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "abc"],
        ["--port", "65536"],
        ["--endpoint", "ws"],
        ["--duplicate-subscriptions", "ignore"],
        ["--heartbeat-tolerance", "0.9"],
        ["--heartbeat-floor", "0"],
        ["--connect-timeout", "-1"],
        ["--timezone", "Nowhere/Town"],
        ["--log-level", "trace"],
        ["--max-frame-size"],
        ["--allow-broker-send=yes"],
        ["--no-such-option"],
        ["positional"],
    ],
)
def test_invalid_command_line_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(argv, {})
    assert info.value.code == 2
    # One clear line, not the usage of every option.
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("stomp-gateway: error: ")


def test_invalid_environment_is_reported_even_if_the_command_line_sets_it() -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--port", "9000"], env(port="abc"))
    assert info.value.code == 2


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(["--help"], {})
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in OPTIONS:
        assert f"--{option.name}" in out


def test_environment_defaults_show_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--help"], env(port="9000"))
    assert "STOMP_GATEWAY_PORT" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["broker_prefix", "endpoint"])
@pytest.mark.parametrize("value", ["", " , "])
def test_empty_repeatable_environment(name: str, value: str) -> None:
    try:
        config = parse_args([], env(**{name: value}))
    except SystemExit as exc:
        assert exc.code == 2  # noqa: PT017 - refusing is one of the two good outcomes
        return
    assert getattr(config, name)  # or falling back to the default
    Gateway(config)


# Operations: secrets, readable files, --print-config.


def test_options_named_like_secrets_are_masked() -> None:
    for option in OPTIONS:
        if any(word in option.name for word in ("secret", "token", "password")):
            assert option.secret, f"--{option.name} must be Option(..., secret=True)"


def test_printable_config_masks_secret_options_and_uri_passwords(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret_topic = [
        dataclasses.replace(option, secret=True) if option.name == "kafka-topic" else option
        for option in OPTIONS
    ]
    monkeypatch.setattr("gateway.config.OPTIONS", tuple(secret_topic))
    config = Config(kafka_topic="hidden", mongo_uri="mongodb://chat:pa%40ss@m1:1,m2:2/chat?tls=1")
    lines = printable_config(config).splitlines()
    assert "STOMP_GATEWAY_KAFKA_TOPIC=*****" in lines
    assert "STOMP_GATEWAY_MONGO_URI=mongodb://chat:*****@m1:1,m2:2/chat?tls=1" in lines
    assert "STOMP_GATEWAY_ENDPOINT=/ws" in lines
    assert "hidden" not in "\n".join(lines)
    assert "pa%40ss" not in "\n".join(lines)


def test_printable_config_round_trips_through_the_environment() -> None:
    config = Config(endpoint=("/ws", "/wss"), demo_page=False, drain_period=0.5)
    environ = dict(line.split("=", 1) for line in printable_config(config).splitlines())
    assert parse_args([], environ) == config


def test_readable_file_accepts_a_file_and_names_what_is_wrong(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN KEY-----\n")
    assert _readable_file(str(key)) == str(key)
    with pytest.raises(ValueError, match=r"cannot read '.*missing.pem': No such file"):
        _readable_file(str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="Is a directory"):
        _readable_file(str(tmp_path))


def test_drain_period_may_be_zero_but_not_negative() -> None:
    assert parse_args(["--drain-period", "0"], {}).drain_period == 0
    with pytest.raises(SystemExit):
        parse_args(["--drain-period", "-1"], {})


@pytest.mark.parametrize("partitioner", ["modulo", "hash", "nginx-hash"])
def test_the_kafka_bus_gets_the_partitioner(partitioner: str) -> None:
    from gateway.app import make_bus
    from kafka_bridge.kafka import KafkaBus

    config = parse_args(["--kafka-bootstrap", "127.0.0.1:9", "--partitioner", partitioner], {})
    bus = make_bus(config)
    assert isinstance(bus, KafkaBus)
    assert bus.settings.partitioner == partitioner


# Properties of the generated option table.

TEXT = st.text(alphabet=string.ascii_letters + string.digits + "._/ -", max_size=20)
WORD = st.text(alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=12)
VALUES: dict[Callable[[str], Any], st.SearchStrategy[Any]] = {
    str: TEXT,
    options.positive_int: st.integers(1, 10**9),
    options.non_negative_int: st.integers(0, 10**9),
    options.tcp_port: st.integers(0, 65535),
    options.positive_float: st.floats(1e-3, 1e6),
    options.non_negative_float: st.floats(0, 1e6),
    options.tolerance: st.floats(1, 100),
    options.path_prefix: WORD.map(lambda word: "/" + word.strip("/") if word.strip("/") else "/x"),
    options.time_zone: st.sampled_from(["UTC", "Asia/Seoul", "Europe/Paris"]),
    options.header_name: st.text(alphabet=string.ascii_letters + "-_", max_size=12),
    options.http_url: WORD.map(lambda word: f"https://example.com/{word}"),
}


def values_of(option: Option) -> st.SearchStrategy[Any]:
    """Valid values of ``option`` (its default alone when it names a file)."""
    if option.flag:
        return st.booleans()
    if option.choices:
        one: st.SearchStrategy[Any] = st.sampled_from(option.choices)
    elif option.parse in VALUES:
        one = VALUES[option.parse] if not option.repeatable else WORD.map(lambda w: "/" + w)
    else:
        return st.just(option.default)  # file options: the file must exist
    if option.repeatable:
        if option.parse is str and not option.choices:
            one = WORD
        return st.lists(one, min_size=1, max_size=3).map(tuple)
    return one


def settings() -> st.SearchStrategy[tuple[Option, Any]]:
    return st.sampled_from(OPTIONS).flatmap(
        lambda option: values_of(option).map(lambda value: (option, value))
    )


def as_text(value: Any) -> str:
    """``value`` as an environment variable gives it (booleans as --print-config does not)."""
    if isinstance(value, bool):
        return "TRUE" if value else "False"
    return " , ".join(value) if isinstance(value, tuple) else str(value)


def as_argv(option: Option, value: Any) -> list[str]:
    if option.flag:
        return [f"--{option.name}" if value else f"--no-{option.name}"]
    values = value if option.repeatable else (value,)
    return [f"--{option.name}={item!s}" for item in values]


@given(settings())
def test_every_option_reads_alike_from_its_flag_and_its_variable(
    setting: tuple[Option, Any],
) -> None:
    option, value = setting
    try:
        expected = Config(**{option.field: value})
    except ValueError:  # alone, it contradicts a default (e.g. --workers 2)
        assume(False)
    assert parse_args(as_argv(option, value), {}) == expected
    assert parse_args([], {env_name(option): as_text(value)}) == expected
    if not option.secret:
        environ = dict(line.split("=", 1) for line in printable_config(expected).splitlines())
        assert parse_args([], environ) == expected


# What every choice of --room-authorization needs beside it.
AUTHORIZED = ["--jwt-secret", "s", "--room-authorization-url", "https://example.com/"]


@pytest.mark.parametrize(
    "option", [option for option in OPTIONS if option.choices], ids=lambda option: option.name
)
def test_the_choices_are_the_literal_type_and_argparse_accepts_exactly_them(
    option: Option,
) -> None:
    hint = typing.get_type_hints(Config)[option.field]
    if typing.get_origin(hint) is tuple:
        hint = typing.get_args(hint)[0]
    assert option.choices == typing.get_args(hint)
    for choice in option.choices:
        config = parse_args([*AUTHORIZED, f"--{option.name}", choice], {})
        assert getattr(config, option.field) in (choice, (choice,))


@given(st.sampled_from([option for option in OPTIONS if option.choices]), WORD)
def test_a_value_outside_the_choices_is_refused(option: Option, value: str) -> None:
    assume(value not in option.choices)
    with pytest.raises(SystemExit):
        parse_args([f"--{option.name}", value], {})
    with pytest.raises(SystemExit):
        parse_args([], {env_name(option): value})


def test_the_partitioner_choices_are_the_kafka_bus_partitioners() -> None:
    [option] = [option for option in OPTIONS if option.name == "partitioner"]
    assert option.choices == typing.get_args(Partitioner) == ("modulo", "hash", "nginx-hash")


COMPONENTS = [Limits(), HeartBeatPolicy(), KafkaSettings(bootstrap="")]


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: type(c).__name__)
def test_the_default_configuration_builds_the_components_defaults(component: Any) -> None:
    assert Config().component(type(component)) == component


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: type(c).__name__)
def test_every_parameter_of_a_component_has_one_option(component: Any) -> None:
    fed = [
        declared.parameter
        for field in dataclasses.fields(Config)
        if (declared := options.usage(field)).owner is type(component)
    ]
    assert sorted(fed) == sorted(field.name for field in dataclasses.fields(component))


def test_an_option_owned_by_a_component_has_its_default() -> None:
    owned = 0
    for field in dataclasses.fields(Config):
        declared = options.usage(field)
        if declared.owner is None:
            continue
        default = inspect.signature(declared.owner).parameters[declared.parameter].default
        assert default in (field.default, inspect.Parameter.empty), field.name
        owned += 1
    assert owned >= 15
    assert Config().sockjs_heartbeat == SockJSFraming().idle_heartbeat_ms
    store = Config().component(InMemoryStore)
    assert isinstance(store, InMemoryStore)


def test_no_two_sections_declare_the_same_setting() -> None:
    sections = [base for base in Config.__mro__[1:] if dataclasses.is_dataclass(base)]
    declared = [field.name for section in sections for field in dataclasses.fields(section)]
    assert sorted(declared) == sorted(field.name for field in dataclasses.fields(Config))


def test_reading_the_configuration_imports_neither_aiokafka_nor_pymongo() -> None:
    code = "import sys, gateway.cli; assert not {'aiokafka', 'pymongo'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


@given(st.sampled_from(OPTIONS), st.text())
def test_any_text_in_any_option_is_a_configuration_or_a_refusal(option: Option, text: str) -> None:
    """NUL, CR, LF, huge numbers, nan: a value is read, or refused with exit code 2."""
    for argv, environ in (([f"--{option.name}={text}"], {}), ([], {env_name(option): text})):
        if option.flag and argv:
            continue  # a flag takes no value on the command line
        try:
            parse_args(argv, environ)
        except SystemExit as exc:
            assert exc.code == 2  # noqa: PT017 - refusing is one of the two good outcomes

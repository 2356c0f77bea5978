"""
How a setting is declared: a dataclass field whose metadata tells how the
command line and the environment give it (:mod:`gateway.config` reads them).

A setting is written once: :func:`setting` for one the gateway owns,
:func:`part_of` for one that is a parameter of a component (``Limits``,
``KafkaSettings``...), whose default it takes. A field typed ``Literal[...]``
(or a tuple of one) offers exactly those choices. The value parsers raise
``ValueError`` with a message fit for ``stomp-gateway: error: ...``.
"""

from __future__ import annotations

import dataclasses
import inspect
import urllib.parse
import zoneinfo
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = [
    "Usage",
    "boolean",
    "header_name",
    "http_url",
    "non_negative_float",
    "non_negative_int",
    "part_of",
    "path_prefix",
    "positive_float",
    "positive_int",
    "readable_file",
    "setting",
    "tcp_port",
    "time_zone",
    "tolerance",
    "usage",
]

T = TypeVar("T")
_KEY = "usage"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Usage:
    """
    What the option table knows of a setting beyond its name, type and default.

    Attributes:
        help: One or two sentences for ``--help`` and the options table.
        parse: Turns the text of the command line or environment into the value.
        metavar: The placeholder ``--help`` shows for the value.
        secret: ``--print-config`` shows ``*****`` instead of the value.
        owner: The component this setting is passed to, as its ``parameter``.

    """

    help: str
    parse: Callable[[str], Any] = str
    metavar: str | None = None
    secret: bool = False
    owner: Callable[..., object] | None = None
    parameter: str = ""


def setting(
    default: T,
    help: str,
    parse: Callable[[str], Any] = str,
    *,
    metavar: str | None = None,
    secret: bool = False,
) -> T:
    """Declare a setting the gateway owns, with its default."""
    usage = Usage(help=help, parse=parse, metavar=metavar, secret=secret)
    field: T = dataclasses.field(default=default, metadata={_KEY: usage})
    return field


def part_of(
    owner: Callable[..., object],
    parameter: str,
    help: str,
    parse: Callable[[str], Any] = str,
    *,
    metavar: str | None = None,
    default: Any = inspect.Parameter.empty,
) -> Any:
    """
    Declare a setting that is ``parameter`` of ``owner``: its default is the
    owner's (``default`` only for a parameter without one).
    """
    declared = inspect.signature(owner).parameters[parameter].default
    if (declared is inspect.Parameter.empty) == (default is inspect.Parameter.empty):
        raise TypeError(f"{parameter} of {owner}: give a default exactly when it has none")
    usage = Usage(help=help, parse=parse, metavar=metavar, owner=owner, parameter=parameter)
    chosen = default if declared is inspect.Parameter.empty else declared
    return dataclasses.field(default=chosen, metadata={_KEY: usage})


def usage(field: dataclasses.Field[Any]) -> Usage:
    """The :class:`Usage` of a field declared with :func:`setting` or :func:`part_of`."""
    declared: Usage = field.metadata[_KEY]
    return declared


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"{value} is not positive")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{value} is negative")
    return value


def tcp_port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"{value} is not a TCP port")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"{value} is not positive")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError(f"{value} is negative")
    return value


def readable_file(text: str) -> str:
    """A path option: the file must exist and be readable now, not at first use."""
    if not text:  # unset
        return text
    try:
        with open(text, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"cannot read {text!r}: {exc.strerror or exc}") from None
    return text


def tolerance(text: str) -> float:
    value = float(text)
    if not value >= 1:
        raise ValueError(f"{value} is below 1")
    return value


def http_url(text: str) -> str:
    if not text:  # unset
        return text
    url = urllib.parse.urlsplit(text)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    return text


def path_prefix(text: str) -> str:
    if not text.startswith("/") or text != text.strip() or len(text) < 2:
        raise ValueError(f"{text!r} is not a path such as /sub")
    return text.rstrip("/") or "/"


def time_zone(text: str) -> str:
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {text!r}") from None
    return text


def header_name(text: str) -> str:
    if text and not all(c.isascii() and (c.isalnum() or c in "-_") for c in text):
        raise ValueError(f"{text!r} is not a header name")
    return text


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean")

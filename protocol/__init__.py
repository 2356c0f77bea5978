"""
Sans-I/O STOMP 1.0, 1.1 and 1.2: frames, an incremental parser, a serializer,
header escaping, version and heart-beat negotiation, and the server session
state machine. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from .errors import (
    InvalidFrame,
    LimitExceeded,
    LocalProtocolError,
    MalformedFrame,
    ProtocolError,
    StompError,
    UnsupportedVersion,
)
from .frames import CLIENT_COMMANDS, SERVER_COMMANDS, Command, Frame, Headers, HeartBeat
from .negotiation import (
    SUPPORTED_VERSIONS,
    HeartBeatMonitor,
    HeartBeatPolicy,
    negotiate_heart_beat,
    negotiate_version,
    parse_heart_beat,
)
from .parser import Limits, Parser
from .serializer import MessageTemplate, message_head, serialize
from .session import ServerSession, State, error_frame, receipt_frame

__all__ = [
    "CLIENT_COMMANDS",
    "SERVER_COMMANDS",
    "SUPPORTED_VERSIONS",
    "Command",
    "Frame",
    "Headers",
    "HeartBeat",
    "HeartBeatMonitor",
    "HeartBeatPolicy",
    "InvalidFrame",
    "LimitExceeded",
    "Limits",
    "LocalProtocolError",
    "MalformedFrame",
    "MessageTemplate",
    "Parser",
    "ProtocolError",
    "ServerSession",
    "State",
    "StompError",
    "UnsupportedVersion",
    "error_frame",
    "message_head",
    "negotiate_heart_beat",
    "negotiate_version",
    "parse_heart_beat",
    "receipt_frame",
    "serialize",
]

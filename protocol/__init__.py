"""
Sans-I/O STOMP 1.0, 1.1 and 1.2: frames, an incremental parser, a serializer,
header escaping, version and heart-beat negotiation, the server session state
machine and one session's subscriptions. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from .errors import (
    InvalidFrame,
    LimitExceeded,
    LocalProtocolError,
    MalformedFrame,
    ProtocolError,
    Refused,
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
from .session import ServerSession, State, error_frame, receipt_for, receipt_frame
from .subscriptions import (
    Admission,
    DuplicatePolicy,
    PendingAck,
    Subscription,
    SubscriptionPolicy,
    Subscriptions,
)

__all__ = [
    "CLIENT_COMMANDS",
    "SERVER_COMMANDS",
    "SUPPORTED_VERSIONS",
    "Admission",
    "Command",
    "DuplicatePolicy",
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
    "PendingAck",
    "ProtocolError",
    "Refused",
    "ServerSession",
    "State",
    "StompError",
    "Subscription",
    "SubscriptionPolicy",
    "Subscriptions",
    "UnsupportedVersion",
    "error_frame",
    "message_head",
    "negotiate_heart_beat",
    "negotiate_version",
    "parse_heart_beat",
    "receipt_for",
    "receipt_frame",
    "serialize",
]

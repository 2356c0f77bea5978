from __future__ import annotations

# Tests for :mod:`protocol.errors`.
import pytest

from protocol.errors import (
    InvalidFrame,
    LimitExceeded,
    LocalProtocolError,
    MalformedFrame,
    ProtocolError,
    StompError,
    UnsupportedVersion,
)


@pytest.mark.parametrize(
    ("cls", "parents"),
    [
        (ProtocolError, (StompError,)),
        (MalformedFrame, (ProtocolError, StompError)),
        (LimitExceeded, (ProtocolError, StompError)),
        (InvalidFrame, (ProtocolError, StompError)),
        (UnsupportedVersion, (InvalidFrame, ProtocolError, StompError)),
        (LocalProtocolError, (StompError,)),
    ],
)
def test_hierarchy(cls: type[Exception], parents: tuple[type[Exception], ...]) -> None:
    for parent in parents:
        assert issubclass(cls, parent)


def test_local_protocol_error_is_not_a_protocol_error() -> None:
    assert not issubclass(LocalProtocolError, ProtocolError)


def test_protocol_error_attributes_and_str() -> None:
    exc = InvalidFrame(
        "missing header",
        details="SEND requires destination",
        receipt_id="r-1",
        headers=(("x", "y"),),
    )
    assert exc.message == "missing header"
    assert exc.details == "SEND requires destination"
    assert exc.receipt_id == "r-1"
    assert exc.headers == (("x", "y"),)
    assert str(exc) == "missing header: SEND requires destination"
    assert exc.args == ("missing header",)


def test_protocol_error_defaults() -> None:
    exc = MalformedFrame("bad")
    assert exc.details == ""
    assert exc.receipt_id is None
    assert exc.headers == ()
    assert str(exc) == "bad"

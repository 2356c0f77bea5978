"""
:class:`Access` reads the ``Authorization`` header of a REST request once: a
property against the reference rule (the service's Bearer token, else a
member's token as the STOMP CONNECT reads it).
"""

from __future__ import annotations

import http

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import Config
from gateway.http.responses import Refused
from gateway.security.access import Access
from gateway.security.auth import AuthenticationError, Authenticator
from gateway.security.identity import Member
from tests.support.tokens import SECRET, hs256

SERVICE = "service-secret"
TOKEN = hs256(7)
AUTHENTICATOR = Authenticator(Config(jwt_secret=SECRET))
ACCESS = Access(AUTHENTICATOR, None, SERVICE)


def reference(authorization: str | None) -> Member | str | None:
    """Who the header names, or why it is refused, by the rule of two reads."""
    if ACCESS.is_service(authorization):
        return None
    try:
        return AUTHENTICATOR.authenticate({"Authorization": authorization or ""})
    except AuthenticationError as exc:
        return str(exc)


def caller(authorization: str | None) -> Member | str | None:
    try:
        return ACCESS.caller(authorization)
    except Refused as exc:
        return f"{exc.response.status_code} {bytes(exc.response.body).decode()}"


_SPACE = st.sampled_from(["", " ", "  ", "\t"])
_SCHEME = st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", ""])
_CREDENTIAL = st.sampled_from([TOKEN, SERVICE, "", "x.y.z", SERVICE + "x"])


@given(st.none() | st.tuples(_SPACE, _SCHEME, _SPACE, _CREDENTIAL, _SPACE).map("".join))
def test_caller_is_the_service_or_the_member_the_header_names(authorization: str | None) -> None:
    expected = reference(authorization)
    found = caller(authorization)
    if isinstance(expected, str):
        assert isinstance(found, str)
        assert found.startswith(f"{http.HTTPStatus.UNAUTHORIZED.value} ")
        assert expected in found
    else:
        assert found == expected


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (f"Bearer {SERVICE}", None),
        (f"Bearer {TOKEN}", Member(7, None, None)),
        (TOKEN, Member(7, None, None)),
    ],
)
def test_caller_examples(authorization: str, expected: Member | None) -> None:
    assert ACCESS.caller(authorization) == expected

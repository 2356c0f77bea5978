"""Unit tests for :mod:`gateway.security.auth`: tokens in CONNECT headers become members."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import Config
from gateway.config import parse_args
from gateway.security.auth import AuthenticationError, Authenticator, bearer_token, jwks_file
from gateway.security.identity import Member
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import StompTestClient, frame_bytes
from tests.support.tokens import SECRET, bearer, ec_key, hs256, public_pem, rsa_key


def authenticate(token_headers: dict[str, str], **settings: Any) -> Member:
    """Authenticate with ``Config`` settings named without their ``jwt_`` prefix."""
    settings.setdefault("secret", SECRET)
    config = Config(**{f"jwt_{name}": value for name, value in settings.items()})
    return Authenticator(config).authenticate(token_headers)


def refused(headers: dict[str, str], **settings: Any) -> str:
    with pytest.raises(AuthenticationError) as info:
        authenticate(headers, **settings)
    return str(info.value)


def test_bearer_token_names_the_member() -> None:
    token = hs256(7, nickname="henhen", rooms=[4, "5"])
    assert authenticate(dict([bearer(token)])) == Member(7, "henhen", frozenset({4, 5}))


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "bearer {t}"},
        {"passcode": "{t}"},
        {"login": "{t}"},
        {"Authorization": "", "passcode": "{t}"},
    ],
)
def test_token_from_other_headers(headers: dict[str, str]) -> None:
    token = hs256("42")
    assert authenticate({k: v.format(t=token) for k, v in headers.items()}) == Member(42)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "no token"),
        ("not-a-jwt", "invalid token"),
        (hs256(7, lifetime=-60), "expired"),
        (hs256(7, nbf=int(time.time()) + 600), "not yet valid"),
        (hs256(7, secret="another-secret-of-sufficient-length!"), "Signature verification"),
        (hs256(7, exp=None), 'missing the "exp" claim'),
        (hs256("seven"), "claim sub is not an integer member id"),
        (hs256(True), "claim sub is not an integer member id"),
        (hs256(7, nickname=5), "claim nickname is not a string"),
        (hs256(7, rooms="4"), "claim rooms is not a list of room ids"),
        (hs256(7, rooms=["x"]), "claim rooms is not a list of room ids"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(token: str | None, reason: str) -> None:
    headers = {} if token is None else dict([bearer(token)])
    assert reason in refused(headers)


def test_leeway_admits_a_token_just_expired() -> None:
    token = hs256(7, lifetime=-5)
    assert authenticate(dict([bearer(token)]), leeway=30) == Member(7)


def test_issuer_and_audience_are_checked_when_configured() -> None:
    good = hs256(7, iss="main-backend", aud="chat")
    assert authenticate(dict([bearer(good)]), issuer="main-backend", audience="chat").id == 7
    wrong = hs256(7, iss="elsewhere", aud="chat")
    assert "issuer" in refused(dict([bearer(wrong)]), issuer="main-backend", audience="chat")
    other = hs256(7, iss="main-backend", aud="mail")
    assert "Audience" in refused(dict([bearer(other)]), issuer="main-backend", audience="chat")


def test_member_and_nickname_claims_are_configurable() -> None:
    token = hs256(None, memberId=9, name="kim")
    member = authenticate(dict([bearer(token)]), member_claim="memberId", nickname_claim="name")
    assert member == Member(9, "kim")


@pytest.mark.parametrize(("make_key", "algorithm"), [(rsa_key, "RS256"), (ec_key, "ES256")])
def test_public_key_file(tmp_path: Path, make_key: Any, algorithm: str) -> None:
    key = make_key()
    path = tmp_path / "key.pem"
    path.write_bytes(public_pem(key))
    token = jwt.encode({"sub": 3, "exp": int(time.time()) + 60}, key, algorithm)
    settings: dict[str, Any] = {"secret": "", "public_key": str(path)}
    assert authenticate(dict([bearer(token)]), **settings) == Member(3)
    # Algorithm confusion: an HS256 token "signed" with the public key is refused.
    confused = jwt.encode({"sub": 3, "exp": int(time.time()) + 60}, "x" * 32, "HS256")
    assert "invalid token" in refused(dict([bearer(confused)]), **settings)


def test_jwks_file_picks_the_key_by_kid(tmp_path: Path) -> None:
    keys = {"a": rsa_key(), "b": rsa_key()}
    jwks = {
        "keys": [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())), "kid": kid}
            for kid, k in keys.items()
        ]
    }
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    settings: dict[str, Any] = {"secret": "", "jwks": str(path)}
    claims = {"sub": 5, "exp": int(time.time()) + 60}
    token = jwt.encode(claims, keys["b"], "RS256", headers={"kid": "b"})
    assert authenticate(dict([bearer(token)]), **settings) == Member(5)
    wrong = jwt.encode(claims, keys["a"], "RS256", headers={"kid": "b"})
    assert "Signature verification" in refused(dict([bearer(wrong)]), **settings)
    unknown = jwt.encode(claims, keys["a"], "RS256", headers={"kid": "c"})
    assert "no key with kid 'c'" in refused(dict([bearer(unknown)]), **settings)


@pytest.mark.parametrize("option", ["--jwt-public-key", "--jwt-jwks"])
@pytest.mark.parametrize("content", [None, b"not a key"])
def test_unusable_key_files_fail_at_startup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, content: bytes | None
) -> None:
    path = tmp_path / "key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit):
        parse_args([option, str(path)], {})
    (line,) = [
        x for x in capsys.readouterr().err.splitlines() if x.startswith("stomp-gateway: error")
    ]
    assert f"argument {option}" in line
    assert str(path) in line


def test_a_jwks_file_is_checked_like_the_option() -> None:
    assert jwks_file("") == ""


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--room-authorization", "claim"], "needs authentication"),
        (["--jwt-secret", "s", "--room-authorization", "http"], "needs --room-authorization-url"),
        (["--tls-cert", __file__], "go together"),
    ],
)
def test_inconsistent_options_are_refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], problem: str
) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv, {})
    assert problem in capsys.readouterr().err


def test_the_secret_options_are_marked_secret() -> None:
    from gateway.config import OPTIONS

    secret = [option.name for option in OPTIONS if option.secret]
    assert secret == ["jwt-secret", "service-token"]


async def test_tokens_never_reach_the_log(
    make_gateway: GatewayFactory,
    clients: list[StompTestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = await make_gateway(jwt_secret=SECRET)
    token = hs256(7)
    for headers in ([bearer(token)], [("passcode", token)], [("login", token)]):
        client = await StompTestClient.open(gateway.port)
        clients.append(client)
        await client.connect("1.2", headers=headers)
    refused = await StompTestClient.open(gateway.port)
    clients.append(refused)
    await refused.send_raw(frame_bytes("CONNECT", [bearer(hs256(7, lifetime=-9))]))
    error = await refused.expect_error_and_close()
    assert error.get("message") == "authentication failed"
    assert "'***'" in caplog.text
    assert token.split(".")[1] not in caplog.text
    assert "eyJ" not in caplog.text  # no token at all, not even the refused one


_TOKEN_TEXT = st.text(st.characters(blacklist_categories=("Z", "C")), min_size=1)


@given(
    scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"]),
    token=_TOKEN_TEXT,
    before=st.sampled_from(["", " ", "  "]),
    between=st.sampled_from([" ", "   "]),
)
def test_bearer_token_reads_any_spelling_of_the_scheme(
    scheme: str, token: str, before: str, between: str
) -> None:
    assert bearer_token(f"{before}{scheme}{between}{token} ") == token
    assert bearer_token(f"{scheme}{between}") == ""


@given(value=st.text())
def test_bearer_token_is_none_for_other_schemes(value: str) -> None:
    if value.strip().partition(" ")[0].lower() != "bearer":
        assert bearer_token(value) is None

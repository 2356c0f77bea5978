"""
Authentication on CONNECT: the JSON Web Token a client presents becomes its :class:`Member`.

The token comes from the ``Authorization`` header (``Bearer <token>``, as the
seed's clients send it), else ``passcode``, else ``login`` (STOMP 1.2 §CONNECT
names the last two for credentials). It is checked with PyJWT: signature with
the configured key (an HS256 secret, or an RS256/ES256 public key from a PEM
or JWKS file), ``exp`` (required) and ``nbf``, and ``iss``/``aud`` when
configured (RFC 7519 §4.1). Tokens are never logged.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.chat.ids import long_id
from gateway.options import non_negative_float, setting

from .identity import Member

__all__ = [
    "ALGORITHMS",
    "CREDENTIAL_HEADERS",
    "Algorithm",
    "AuthenticationError",
    "Authenticator",
    "JwtSettings",
    "bearer_token",
    "jwks_file",
    "public_key_file",
]

Algorithm = Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
_SYMMETRIC = frozenset({"HS256", "HS384", "HS512"})
# CONNECT headers that may carry a token, in the order they are looked at.
CREDENTIAL_HEADERS = ("Authorization", "authorization", "passcode", "login")


class AuthenticationError(Exception):
    """The CONNECT frame carries no valid token; the message says why."""


def public_key_file(path: str) -> str:
    """Check that ``path`` holds a PEM public key (an argparse converter); return it."""
    if path:  # empty: unset
        _load_public_key(path)
    return path


def jwks_file(path: str) -> str:
    """Check that ``path`` holds a JWKS with at least one usable key; return it."""
    if path:  # empty: unset
        _load_jwks(path)
    return path


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


def _load_public_key(path: str) -> Any:
    data = _read(path)
    try:
        return load_pem_public_key(data)
    except (ValueError, TypeError):
        raise ValueError(f"{path} holds no PEM public key") from None


def _load_jwks(path: str) -> dict[str | None, jwt.PyJWK]:
    data = _read(path)
    try:
        keys = jwt.PyJWKSet.from_json(data.decode()).keys
    except (jwt.PyJWTError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} holds no usable JWKS: {exc}") from None
    return {key.key_id: key for key in keys}


@dataclasses.dataclass(frozen=True, kw_only=True)
class JwtSettings:
    """How tokens are checked: the key (at most one of three), the claims, the clock."""

    jwt_secret: str = setting(
        "",
        "Shared secret of HS256 tokens; turns authentication on.",
        metavar="SECRET",
        secret=True,
    )
    jwt_public_key: str = setting(
        "",
        "PEM file with the public key of RS256/ES256 tokens; turns authentication on.",
        public_key_file,
        metavar="FILE",
    )
    jwt_jwks: str = setting(
        "",
        "JWKS (JSON) file with the public keys of RS256/ES256 tokens; turns authentication on.",
        jwks_file,
        metavar="FILE",
    )
    jwt_algorithms: tuple[Algorithm, ...] = setting(
        ("HS256", "RS256", "ES256"),
        "Token algorithms accepted (those matching the configured key); repeat for several.",
        metavar="ALG",
    )
    jwt_issuer: str = setting("", "Required iss claim (none: not checked).", metavar="ISS")
    jwt_audience: str = setting("", "Required aud claim (none: not checked).", metavar="AUD")
    jwt_leeway: float = setting(
        0.0,
        "Seconds of clock skew allowed when checking exp and nbf.",
        non_negative_float,
        metavar="S",
    )
    jwt_member_claim: str = setting(
        "sub",
        "Claim holding the member id (an integer, or a string of digits).",
        metavar="CLAIM",
    )
    jwt_nickname_claim: str = setting(
        "nickname",
        "Claim holding the nickname stamped on the member's messages (optional in tokens).",
        metavar="CLAIM",
    )
    jwt_rooms_claim: str = setting(
        "rooms",
        "Claim listing the member's room ids, for --room-authorization claim.",
        metavar="CLAIM",
    )

    @property
    def authentication(self) -> bool:
        """Whether CONNECT must carry a valid token: a key is configured."""
        return bool(self.jwt_secret or self.jwt_public_key or self.jwt_jwks)

    def key_conflict(self) -> str | None:
        """Why the keys cannot be used together, or None."""
        if sum(map(bool, (self.jwt_secret, self.jwt_public_key, self.jwt_jwks))) > 1:
            return "give one of --jwt-secret, --jwt-public-key, --jwt-jwks"
        return None


class Authenticator:
    """
    Turns the headers of a CONNECT frame into the :class:`Member` they prove.

    Args:
        config: The ``jwt_*`` settings; exactly one of ``jwt_secret``,
            ``jwt_public_key`` (a PEM file) and ``jwt_jwks`` (a JWKS file) is set.
            Keys are read once, here: an unreadable or invalid file raises ValueError.

    """

    def __init__(self, config: JwtSettings) -> None:
        self.config = config
        symmetric = bool(config.jwt_secret)
        # Only the algorithms the key is meant for: a public key must never
        # verify an HMAC (RFC 8725 §2.1, algorithm confusion).
        self.algorithms: list[str] = [
            a for a in config.jwt_algorithms if (a in _SYMMETRIC) == symmetric
        ]
        if not self.algorithms:
            raise ValueError("no --jwt-algorithms entry fits the configured key")
        self._key: Any = config.jwt_secret or None
        self._jwks: dict[str | None, jwt.PyJWK] = {}
        if config.jwt_public_key:
            self._key = _load_public_key(config.jwt_public_key)
        elif config.jwt_jwks:
            self._jwks = _load_jwks(config.jwt_jwks)

    def authenticate(self, headers: Mapping[str, str]) -> Member:
        """
        Return the member the token in ``headers`` names.

        Raises:
            AuthenticationError: No token, or one that does not verify.

        """
        return self.verify(_token(headers))

    def verify(self, token: str) -> Member:
        """
        Return the member ``token`` names.

        Raises:
            AuthenticationError: The token is empty, or does not verify.

        """
        if not token:
            raise AuthenticationError("no token: send Authorization: Bearer <token>")
        try:
            claims = jwt.decode(
                token,
                self._key_for(token),
                algorithms=self.algorithms,
                issuer=self.config.jwt_issuer or None,
                audience=self.config.jwt_audience or None,
                leeway=self.config.jwt_leeway,
                options={
                    "require": ["exp"],
                    "verify_aud": bool(self.config.jwt_audience),
                    # The member id is checked by _member: seed tokens carry it as a number.
                    "verify_sub": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid token: {exc}") from None
        return self._member(claims)

    def _key_for(self, token: str) -> Any:
        if not self._jwks:
            return self._key
        kid = jwt.get_unverified_header(token).get("kid")
        key = self._jwks.get(kid)
        if key is None and kid is None and len(self._jwks) == 1:
            key = next(iter(self._jwks.values()))
        if key is None:
            raise AuthenticationError(f"invalid token: no key with kid {kid!r} in the JWKS")
        return key.key

    def _member(self, claims: dict[str, Any]) -> Member:
        config = self.config
        member_id = long_id(claims.get(config.jwt_member_claim))
        if member_id is None:
            raise AuthenticationError(
                f"claim {config.jwt_member_claim} is not an integer member id"
            )
        nickname = claims.get(config.jwt_nickname_claim)
        if nickname is not None and not isinstance(nickname, str):
            raise AuthenticationError(f"claim {config.jwt_nickname_claim} is not a string")
        return Member(member_id, nickname, _rooms(claims, config.jwt_rooms_claim))


def bearer_token(value: str) -> str | None:
    """
    The token of a ``Bearer <token>`` credential (RFC 6750 §2.1, scheme
    case-insensitive), "" when it names none; None for any other value.
    """
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _credential(value: str) -> str:
    """
    The token a credential header carries: ``Bearer <token>``, or a bare
    token, as passcode and login carry it ("" for none).
    """
    value = value.strip()
    token = bearer_token(value)
    return value if token is None else token


def _token(headers: Mapping[str, str]) -> str:
    """The first token of the credential headers, "" for none."""
    tokens = (_credential(headers.get(name, "")) for name in CREDENTIAL_HEADERS)
    return next((token for token in tokens if token), "")


def _rooms(claims: dict[str, Any], claim: str) -> frozenset[int] | None:
    listed = claims.get(claim)
    if listed is None:
        return None
    rooms = [long_id(room) for room in listed] if isinstance(listed, list) else [None]
    if None in rooms:
        raise AuthenticationError(f"claim {claim} is not a list of room ids")
    return frozenset(room for room in rooms if room is not None)

"""JSON Web Tokens for the tests: HS256 with a known secret, and key pairs."""

from __future__ import annotations

import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["SECRET", "bearer", "ec_key", "hs256", "public_pem", "rsa_key"]

SECRET = "test-secret-that-is-long-enough-for-hs256"


def hs256(member: Any = 7, *, lifetime: float = 3600, secret: str = SECRET, **claims: Any) -> str:
    """Return a token for ``member`` signed with ``secret``, valid for ``lifetime`` seconds."""
    payload = {"sub": member, "exp": int(time.time() + lifetime), **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, "HS256")


def bearer(token: str) -> tuple[str, str]:
    """The CONNECT header the seed's clients send."""
    return ("Authorization", f"Bearer {token}")


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

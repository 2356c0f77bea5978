"""Serving wss:// and https:// directly with --tls-cert and --tls-key."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect

from gateway.config import parse_args
from protocol import Command
from tests.support.servers import GatewayFactory
from tests.support.stomp_client import StompTestClient


def self_signed(directory: Path) -> tuple[Path, Path]:
    """Write a certificate for 127.0.0.1 and its key; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_wss_with_a_self_signed_certificate(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    gateway = await make_gateway(tls_cert=str(cert), tls_key=str(key))
    trusting = ssl.create_default_context(cafile=str(cert))
    async with connect(f"wss://127.0.0.1:{gateway.port}/ws", ssl=trusting) as ws:
        client = StompTestClient(ws)
        await client.connect("1.2")
        await client.subscribe("/sub/pong")
        await client.send("SEND", [("destination", "/pub/ping")])
        assert (await client.expect(Command.MESSAGE)).body == b"pong"
    # A client that does not trust the certificate cannot connect.
    with pytest.raises(ssl.SSLCertVerificationError):
        async with connect(f"wss://127.0.0.1:{gateway.port}/ws", open_timeout=5):
            pass


def test_a_missing_certificate_file_fails_at_startup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--tls-cert", str(tmp_path / "none.pem"), "--tls-key", __file__], {})
    assert "argument --tls-cert: cannot read" in capsys.readouterr().err

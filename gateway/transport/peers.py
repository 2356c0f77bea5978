"""Who is at the other end of a connection, as logs and per-address limits name it."""

from __future__ import annotations

from websockets.asyncio.server import ServerConnection

__all__ = ["remote_address", "remote_host"]


def remote_host(connection: ServerConnection) -> str:
    """
    The remote IP address of ``connection``, without the port; the socket's
    own name when it has no (host, port) address, e.g. a Unix socket.
    """
    address = connection.remote_address
    return str(address[0]) if isinstance(address, tuple) else str(address)


def remote_address(connection: ServerConnection) -> str:
    """
    ``host:port`` of ``connection``, as the logs name it; the socket's own
    name when it has no (host, port) address, e.g. a Unix socket.
    """
    address = connection.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{remote_host(connection)}:{address[1]}"
    return remote_host(connection)

"""Watching the gateway take client heart-beats at the socket."""

from __future__ import annotations

from gateway.transport.connection import StompConnection


def spy_on_beats(connection: StompConnection) -> list[bool]:
    """Record what the connection's beat taker answered each read of its socket."""
    websocket = connection.websocket
    take = getattr(websocket, "beats", None)
    assert take is not None, "heart-beats negotiated: the socket's reads are looked at"
    answers: list[bool] = []

    def recorded(data: bytes) -> bool:
        answers.append(take(data))
        return answers[-1]

    websocket.beats = recorded  # type: ignore[attr-defined]
    return answers

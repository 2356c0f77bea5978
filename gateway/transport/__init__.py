"""Asyncio STOMP over WebSocket: connections, framing, heart-beats, SockJS."""

"""
The gateway end to end: a real server on a free port, raw WebSocket clients
sending hand-built STOMP frames (see :mod:`tests.support.stomp_client`), one
module per behaviour.
"""

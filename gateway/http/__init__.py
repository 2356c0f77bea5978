"""Plain HTTP on the STOMP port: health, metrics, the chat REST API, the demo page."""

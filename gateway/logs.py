"""
Log output: human-readable lines by default, or one JSON object per line
(``--log-format json``) carrying the structured fields of session events.
"""

from __future__ import annotations

import datetime
import json
import logging

__all__ = ["FIELDS", "JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Fields the gateway passes with ``extra=`` (see gateway.transport.handlers.SessionLog).
FIELDS = ("session", "remote", "event", "reason")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the fields present."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                entry[field] = str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str) -> None:
    """Log to stderr at ``level`` in ``log_format`` (``text`` or ``json``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=level.upper(), handlers=[handler])
    if level != "debug":
        logging.getLogger("websockets").setLevel(logging.WARNING)

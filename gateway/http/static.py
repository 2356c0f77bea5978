"""The demo chat page and the files it loads, shipped inside the package."""

from __future__ import annotations

import dataclasses
import html
import mimetypes
from importlib import resources

__all__ = ["StaticFile", "load_static_files"]

_TYPES = {".js": "text/javascript; charset=utf-8", ".html": "text/html; charset=utf-8"}


@dataclasses.dataclass(frozen=True, slots=True)
class StaticFile:
    """A file's bytes and its content type."""

    body: bytes
    content_type: str


def load_static_files(endpoint: str) -> dict[str, StaticFile]:
    """
    Read every file of ``gateway/static`` once, keyed by the URL path it is served at.

    The page learns the STOMP endpoint from its ``stomp-endpoint`` meta tag,
    filled in here with the first configured endpoint.
    """
    files: dict[str, StaticFile] = {}
    for entry in resources.files("gateway").joinpath("static").iterdir():
        if not entry.is_file() or entry.name.startswith("."):
            continue
        suffix = "." + entry.name.rpartition(".")[2]
        content_type = _TYPES.get(suffix) or mimetypes.guess_type(entry.name)[0] or "text/plain"
        files[f"/static/{entry.name}"] = StaticFile(entry.read_bytes(), content_type)
    page = files.pop("/static/index.html")
    meta = '<meta name="stomp-endpoint" content="/ws">'
    filled = f'<meta name="stomp-endpoint" content="{html.escape(endpoint)}">'
    files["/"] = StaticFile(page.body.replace(meta.encode(), filled.encode()), page.content_type)
    return files

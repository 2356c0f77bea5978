"""``python -m gateway``: the same entry point as ``stomp-gateway``."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())

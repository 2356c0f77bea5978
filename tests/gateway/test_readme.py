"""The README's configuration table is the one the code describes."""

from __future__ import annotations

from pathlib import Path

from gateway.config import options_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_carries_the_options_table() -> None:
    assert options_table() in README.read_text()

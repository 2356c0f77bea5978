"""The documentation says what the code does, and its links lead somewhere.

README.md is the front page; the reference lives in docs/. The option table of
docs/configuration.md is the one ``gateway.config.options_table()`` generates, and every
relative link of README.md, docs/*.md and the READMEs of bench/ and fuzz/ names a file that
exists and, with a ``#fragment``, a heading of that file (anchors as GitHub renders them).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from gateway.config import options_table

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REFERENCE = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
PAGES = [*REFERENCE, ROOT / "bench" / "README.md", ROOT / "fuzz" / "README.md"]

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
REPO_PATH = re.compile(
    r"^(?:protocol|gateway|kafka_bridge|persistence|tests|scripts|bench|fuzz|deploy|docs|\.ci)"
    r"/[\w./-]*$"
)


def prose(markdown: str) -> str:
    """The text outside fenced code blocks, without code spans."""
    return CODE_SPAN.sub("", FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor; a repeated one gets GitHub's -1, -2 ... suffixes."""
    seen: Counter[str] = Counter()
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", markdown)):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose file or ``#anchor`` does not exist."""
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if EXTERNAL.match(target):
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and (linked.suffix != ".md" or fragment not in anchors(linked.read_text())):
            broken.append(f"{target}: no heading #{fragment}")
    return broken


def test_configuration_page_carries_the_options_table() -> None:
    assert options_table() in (DOCS / "configuration.md").read_text()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def named_paths(markdown: str) -> list[str]:
    """The repository paths (``gateway/app.py``, ``tests/ops``) the prose names in code spans."""
    spans = CODE_SPAN.findall(FENCE.sub("", markdown))
    words = (word.rstrip(",.;:") for span in spans for word in span.strip("`").split())
    return [word for word in words if REPO_PATH.match(word)]


@pytest.mark.parametrize("page", REFERENCE, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_path_named_exists(page: Path) -> None:
    """Module and script paths follow the tree (bench/README.md keeps each round's history)."""
    assert [path for path in named_paths(page.read_text()) if not (ROOT / path).exists()] == []


def test_the_front_page_links_every_page_of_docs() -> None:
    front_page = {
        (ROOT / target.partition("#")[0]).resolve()
        for target in LINK.findall(prose((ROOT / "README.md").read_text()))
        if not EXTERNAL.match(target)
    }
    assert sorted(page.name for page in DOCS.glob("*.md") if page not in front_page) == []


def test_slugs_follow_github() -> None:
    assert slug("Errors: what the client sees") == "errors-what-the-client-sees"
    assert slug("`--workers` on one machine") == "--workers-on-one-machine"
    assert slug("What CI tests, and on what") == "what-ci-tests-and-on-what"
    assert slug("History: MongoDB") == "history-mongodb"
    assert anchors("# A\n## B\n## B\n```\n# C\n```\n") == {"a", "b", "b-1"}


def test_a_missing_file_and_a_missing_anchor_are_reported(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## Its part\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#its-part) [self](#page) [web](https://example.com/x#y)\n"
        "[file](missing.md) [anchor](other.md#no-part) `[code](missing.md)`\n"
        "```\n[fenced](missing.md)\n```\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#no-part: no heading #no-part",
    ]


def test_named_paths_are_the_repository_paths_in_code_spans() -> None:
    markdown = (
        "`gateway/app.py`, `stomp-gateway --port 9000`, `tests/ops`; the gateway/floor ratio\n"
        "```\ngateway/fenced.py\n```\n`/v1/api/chat/4` `scripts/serve --port 9000`\n"
    )
    assert named_paths(markdown) == ["gateway/app.py", "tests/ops", "scripts/serve"]

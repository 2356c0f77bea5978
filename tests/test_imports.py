"""
The import rules of the project's packages (issue 15), checked on their
source with :mod:`ast`, and the checker itself on small synthetic packages.

- no import cycles among the project's modules;
- ``protocol`` imports only the standard library (and itself);
- ``gateway.transport`` imports nothing from ``gateway.chat``,
  ``gateway.http`` or ``gateway.security``: the application plugs into it;
- ``kafka_bridge`` and ``persistence`` import nothing from ``gateway``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.import_rules import (
    Import,
    cycles,
    describe,
    forbidden,
    modules,
    outside_standard_library,
    project_imports,
)

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protocol", "gateway", "kafka_bridge", "persistence")
BOUNDARIES = [
    ("gateway.transport", ("gateway.chat", "gateway.http", "gateway.security")),
    ("kafka_bridge", ("gateway",)),
    ("persistence", ("gateway",)),
]


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    """Every import of the project's packages."""
    return project_imports(ROOT, PACKAGES)


def violations(found: list[Import]) -> str:
    return "\n".join(str(one) for one in found)


def test_no_import_cycles(imports: list[Import]) -> None:
    found = cycles(imports, modules(ROOT, PACKAGES))
    assert not found, "import cycles:\n" + "\n".join(describe(cycle) for cycle in found)


def test_protocol_imports_only_the_standard_library(imports: list[Import]) -> None:
    found = outside_standard_library(imports, "protocol")
    assert not found, "protocol imports beyond the standard library:\n" + violations(found)


@pytest.mark.parametrize(("package", "banned"), BOUNDARIES, ids=[rule[0] for rule in BOUNDARIES])
def test_package_boundaries(imports: list[Import], package: str, banned: tuple[str, ...]) -> None:
    found = forbidden(imports, package, banned)
    assert not found, f"{package} imports from {', '.join(banned)}:\n" + violations(found)


# The checker on synthetic packages.


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_every_kind_of_import_is_read(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "app/__init__.py": "from .core import run\n",
            "app/core.py": "import os.path\nfrom . import util\n",
            "app/util.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from app.io.sock import Socket\n"
                "def late():\n    import app.io\n    from .core import run\n"
            ),
            "app/io/__init__.py": "",
            "app/io/sock.py": "from ..util import late as later\nfrom . import missing\n",
        },
    )
    found = {(one.importer, one.target, one.line) for one in project_imports(tmp_path, ["app"])}
    assert found == {
        ("app", "app.core", 1),
        ("app.core", "os.path", 1),
        ("app.core", "app.util", 2),
        ("app.util", "typing", 1),
        ("app.util", "app.io.sock", 3),
        ("app.util", "app.io", 5),
        ("app.util", "app.core", 6),
        ("app.io.sock", "app.util", 1),
        ("app.io.sock", "app.io", 2),  # no such module: the package it was looked for in
    }


def test_an_allowed_import_passes_and_a_forbidden_one_is_named(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "core/__init__.py": "import json\nfrom core import frames\n",
            "core/frames.py": "from collections.abc import Iterable\n",
            "core/net.py": "import core.frames\n\ndef later():\n    import websockets\n",
            "app/__init__.py": "import core\nfrom app import ui\n",
            "app/ui.py": "from core.net import later\n",
        },
    )
    imports = project_imports(tmp_path, ["core", "app"])
    outside = outside_standard_library(imports, "core")
    assert [str(one) for one in outside] == [
        "core/net.py:4 core.net imports websockets (import websockets)"
    ]
    assert forbidden(imports, "core", ["app"]) == []
    (crossing,) = forbidden(imports, "app", ["core.net"])
    assert str(crossing) == "app/ui.py:1 app.ui imports core.net (from core.net import later)"
    assert cycles(imports, modules(tmp_path, ["core", "app"])) == []


def test_a_cycle_is_reported_with_its_imports(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "import json\n\ndef f():\n    from .c import X\n",
            "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n",
            "pkg/d.py": "from . import d\n",
        },
    )
    found = cycles(project_imports(tmp_path, ["pkg"]), modules(tmp_path, ["pkg"]))
    assert [describe(cycle) for cycle in found] == [
        "pkg.a -> pkg.b -> pkg.c -> pkg.a"
        "\n    pkg/a.py:1 pkg.a imports pkg.b (from pkg import b)"
        "\n    pkg/b.py:4 pkg.b imports pkg.c (from .c import X)"
        "\n    pkg/c.py:3 pkg.c imports pkg.a (import pkg.a)",
        "pkg.d -> pkg.d\n    pkg/d.py:1 pkg.d imports pkg.d (from . import d)",
    ]


# How a synthetic module imports another: each form names the same module.
FORMS = [
    "import pkg.m{0}",
    "from pkg import m{0}",
    "from . import m{0}",
    "from .m{0} import name",
    "from pkg.m{0} import name as other",
    "def later():\n    import pkg.m{0}",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.m{0} import name",
]

graphs = st.integers(min_value=1, max_value=6).flatmap(
    lambda size: st.dictionaries(
        st.tuples(st.integers(0, size - 1), st.integers(0, size - 1)),
        st.sampled_from(FORMS),
        max_size=size * 2,
    ).map(lambda edges: (size, edges))
)


def reaches(edges: set[tuple[int, int]], start: int) -> set[int]:
    """The modules an import chain from ``start`` reaches (the reference model)."""
    seen: set[int] = set()
    frontier = {start}
    while frontier:
        seen |= frontier
        frontier = {b for a, b in edges if a in frontier} - seen
    return {b for a, b in edges if a in seen}


@given(graphs)
def test_cycles_match_a_reference_model(graph: tuple[int, dict[tuple[int, int], str]]) -> None:
    size, edges = graph
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        files = {"pkg/__init__.py": ""}
        for number in range(size):
            lines = [form.format(b) for (a, b), form in edges.items() if a == number]
            files[f"pkg/m{number}.py"] = "\n".join(["name = 1", *lines]) + "\n"
        write_tree(root, files)
        found = cycles(project_imports(root, ["pkg"]), modules(root, ["pkg"]))
    on_cycles = {number for number in range(size) if number in reaches(set(edges), number)}
    reported = {one.importer for cycle in found for one in cycle}
    assert reported <= {f"pkg.m{number}" for number in on_cycles}
    for cycle in found:
        closing = [*cycle[1:], cycle[0]]
        assert [one.target for one in cycle] == [one.importer for one in closing]
    # Each module on a cycle shares a reported cycle's component: one report per component.
    components = {
        frozenset(
            n for n in on_cycles if n in reaches(set(edges), m) and m in reaches(set(edges), n)
        )
        for m in on_cycles
    }
    assert len(found) == len(components)

"""
The import graph of the project's packages, read with :mod:`ast`, and the
checks ``tests/test_imports.py`` makes on it.

Every ``import`` and ``from ... import`` statement counts wherever it stands:
inside functions, under ``if TYPE_CHECKING:``, in ``try`` blocks. A relative
import is resolved against its module's package. ``from a import b`` names the
module ``a.b`` when that module exists in the tree, else the module ``a``.
Importing ``a.b`` is an edge to ``a.b`` only: the parent packages Python runs
first are not edges, as in pylint's cyclic-import check.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Import:
    """One imported module of one import statement."""

    importer: str  # the importing module, dotted
    path: Path  # its file, relative to the root
    line: int
    target: str  # the imported module, dotted
    statement: str  # the statement as written (normalised by ast.unparse)

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.importer} imports {self.target} ({self.statement})"


def within(module: str, package: str) -> bool:
    """Whether ``module`` is ``package`` or one of its submodules."""
    return module == package or module.startswith(package + ".")


def modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``: dotted name to file, relative to ``root``."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            parts = relative.with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = relative
    return found


def project_imports(root: Path, packages: Sequence[str]) -> list[Import]:
    """Every import of every module of ``packages`` under ``root``, in file order."""
    known = modules(root, packages)
    imports: list[Import] = []
    for module, path in known.items():
        tree = ast.parse((root / path).read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in dict.fromkeys(_targets(node, module, is_package, known)):
                    imports.append(Import(module, path, node.lineno, target, ast.unparse(node)))
    return sorted(imports, key=lambda found: (str(found.path), found.line, found.target))


def _targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: dict[str, Path]
) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = _absolute(node, module, is_package)
    for alias in node.names:
        submodule = f"{base}.{alias.name}" if base else alias.name
        yield submodule if submodule in known else base


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a ``from`` statement names, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    package = module if is_package else module.rpartition(".")[0]
    parts = package.split(".")
    anchor = ".".join(parts[: len(parts) - (node.level - 1)])
    return ".".join(part for part in (anchor, node.module) if part)


def outside_standard_library(imports: Iterable[Import], package: str) -> list[Import]:
    """The imports of ``package``'s modules of anything but the standard library and itself."""
    return [
        found
        for found in imports
        if within(found.importer, package)
        and not within(found.target, package)
        and found.target.partition(".")[0] not in sys.stdlib_module_names
    ]


def forbidden(imports: Iterable[Import], package: str, banned: Iterable[str]) -> list[Import]:
    """The imports of ``package``'s modules of any module within one of ``banned``."""
    banned = tuple(banned)
    return [
        found
        for found in imports
        if within(found.importer, package) and any(within(found.target, other) for other in banned)
    ]


def cycles(imports: Iterable[Import], known: Iterable[str]) -> list[list[Import]]:
    """
    One import cycle per strongly connected component of the graph of
    ``known`` modules, as the chain of imports that closes it: each import's
    target is the next one's importer, and the last one's the first's.
    A component may hold more cycles than the one shown: breaking it shows the next.
    """
    edges = _edges(imports, set(known))
    return [_cycle_through(min(component), component, edges) for component in _components(edges)]


def describe(cycle: Sequence[Import]) -> str:
    """The cycle's modules, then each import on it."""
    chain = " -> ".join([found.importer for found in cycle] + [cycle[0].importer])
    return chain + "".join(f"\n    {found}" for found in cycle)


Edges = dict[str, dict[str, Import]]  # importer -> target -> the first import of it


def _edges(imports: Iterable[Import], known: set[str]) -> Edges:
    edges: Edges = {module: {} for module in known}
    for found in imports:
        target = _longest_known_prefix(found.target, known)
        if found.importer in known and target is not None:
            edges[found.importer].setdefault(target, found)
    return edges


def _longest_known_prefix(module: str, known: set[str]) -> str | None:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def _components(edges: Edges) -> list[set[str]]:
    """The strongly connected components that hold a cycle (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1 or module in edges[module]:
                found.append(component)

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(found, key=min)


def _cycle_through(start: str, component: set[str], edges: Edges) -> list[Import]:
    """The shortest cycle from ``start`` back to it inside ``component`` (breadth first)."""
    came_by: dict[str, Import] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for module in frontier:
            for target, found in sorted(edges[module].items()):
                if target == start:
                    return [*_path_to(module, start, came_by), found]
                if target in component and target not in came_by:
                    came_by[target] = found
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is on no cycle of {sorted(component)}")


def _path_to(module: str, start: str, came_by: dict[str, Import]) -> list[Import]:
    path: list[Import] = []
    while module != start:
        path.append(came_by[module])
        module = came_by[module].importer
    return path[::-1]

"""Arrows point down only (docs/library.md, "Layers"): what each layer of the package may import.

Read from the source with ``ast``, so an import inside a function (the lazy ones that keep a
command fast) counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "budgetctl"
FACADES = ("budgetctl.importer", "budgetctl.ledger", "budgetctl.compat", "budgetctl.cli")
SERVING = ("budgetctl.server",)  # speaks HTTP to clients (issue 12): above the stores too
BELOW_THE_FACADES = ("store", "core", "costing")
ABOVE_THE_CORE = ("budgetctl.store", "budgetctl.costing", "budgetctl.cli")


def imported(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, a module of ``package``.

    ``from budgetctl import ledger`` names ``budgetctl.ledger``; a relative import is made
    absolute from ``package``.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            yield node.lineno, base
            for alias in node.names:  # a submodule imported by name from its package
                yield node.lineno, f"{base}.{alias.name}"


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def package_of(path: Path) -> str:
    """The package a source file's relative imports start from (itself for an ``__init__``)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1])


def violations(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        package = package_of(path)
        for line, name in imported(path.read_text(encoding="utf-8"), package):
            if within(name, forbidden):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    return found


@pytest.mark.parametrize("layer", BELOW_THE_FACADES)
def test_nothing_below_the_facades_imports_them(layer: str) -> None:
    assert (PACKAGE / layer).is_dir()
    assert violations(layer, FACADES + SERVING) == []


def test_the_core_imports_no_layer_above_it() -> None:
    assert violations("core", ABOVE_THE_CORE + FACADES + SERVING) == []


def test_the_check_sees_every_kind_of_import() -> None:
    source = """
import budgetctl.ledger
from budgetctl import compat
from budgetctl.cli.app import main
def lazy():
    from budgetctl.importer import import_litellm
    from .. import server
    from ..store import codec
"""
    names = {name for _, name in imported(source, "budgetctl.core")}
    for name in (
        "budgetctl.ledger",
        "budgetctl.compat",
        "budgetctl.cli.app",
        "budgetctl.importer",
        "budgetctl.server",
        "budgetctl.store",
    ):
        assert any(within(found, (name,)) for found in names), name
    assert package_of(PACKAGE / "core" / "rules.py") == "budgetctl.core"
    assert package_of(PACKAGE / "store" / "__init__.py") == "budgetctl.store"
    assert not within("budgetctl.ledgers", ("budgetctl.ledger",))
    assert within("budgetctl.store.codec", ABOVE_THE_CORE)

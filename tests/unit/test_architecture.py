"""The functional core stays pure: domain modules import no I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "worker" / "domain"
IO_LIBRARIES = {
    "asyncpg",
    "aiokafka",
    "faust",
    "mode",
    "zeep",
    "aiohttp",
    "httpx",
    "requests",
    "socket",
    "worker.adapters",
    "worker.entrypoints",
    "worker.sandbox",
}


@pytest.mark.parametrize("module", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_domain_module_imports_no_io(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    offending = {name for name in imported for lib in IO_LIBRARIES if name == lib or name.startswith(lib + ".")}
    assert not offending, f"{module.name} imports {offending}"


def test_domain_package_is_not_empty() -> None:
    assert len(list(DOMAIN.glob("*.py"))) >= 3

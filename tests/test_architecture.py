"""Dependency direction: kernel ← domains ← adapters. Checked on the source (AST)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "satshare"
KERNEL = ["db", "errors", "money", "clock", "security", "faultpoints"]
DOMAINS = [
    "access",
    "users",
    "plans",
    "subscriptions",
    "payments",
    "ledger",
    "apikeys",
    "notifications",
    "idempotency",
    "onchain",
    "rates",
    "affiliates",
    "payouts",
    "reports",
]
ADAPTERS = ("satshare.api", "satshare.providers", "satshare.sim", "satshare.cli", "satshare.bot")
FRAMEWORKS = {
    "fastapi",
    "starlette",
    "telegram",
    "sqladmin",
    "httpx",
    "uvicorn",
    "typer",
    "procrastinate",
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", KERNEL)
def test_kernel_imports_nothing_else_from_satshare(module: str) -> None:
    own = {n for n in imports_of(PACKAGE / f"{module}.py") if n.startswith("satshare")}
    assert own == set(), own


@pytest.mark.parametrize("domain", DOMAINS)
def test_domains_import_no_framework_and_no_adapter(domain: str) -> None:
    for path in (PACKAGE / domain).glob("*.py"):
        for name in imports_of(path):
            root = name.split(".")[0]
            assert root not in FRAMEWORKS, f"{path.name} imports {name}"
            assert not any(name == a or name.startswith(a + ".") for a in ADAPTERS), (
                f"{domain}/{path.name} imports the adapter {name}"
            )


def test_every_domain_module_was_checked() -> None:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    adapters = {"api", "bot", "providers", "sim", "migrations", "cli"}
    assert packages - adapters == set(DOMAINS)

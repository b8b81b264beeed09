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


# -- the tests themselves ------------------------------------------------------------------

TESTS = Path(__file__).parent
#: Test modules of work in progress elsewhere that still import from a test module; each
#: moves what it takes to tests/helpers.py and leaves this set.
NOT_YET_MOVED = {"test_fault_knobs_rails.py", "test_idempotency_crash.py"}


def _test_modules_imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "tests":  # from tests import test_x
                names.update(f"tests.{alias.name}" for alias in node.names)
    return {n for n in names if n.startswith("tests.test_")}


def test_no_test_module_imports_another() -> None:
    """What tests share lives in tests/helpers.py and the *kit.py modules, so a test module
    can be run, moved or deleted on its own."""
    found = {
        path.name: sorted(imported)
        for path in sorted(TESTS.glob("*.py"))
        if path.name not in NOT_YET_MOVED and (imported := _test_modules_imported(path))
    }
    assert found == {}, f"move what these take to tests/helpers.py: {found}"


def _marks(decorators: list[ast.expr]) -> set[str]:
    """The names of the ``pytest.mark.<name>`` decorators (called or not)."""
    names = set()
    for decorator in decorators:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Attribute)
            and target.value.attr == "mark"
        ):
            names.add(target.attr)
    return names


def test_every_test_that_drives_chromium_is_marked_browser() -> None:
    unmarked = []
    for path in sorted(TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not node.name.startswith("test_") or "browser" in _marks(node.decorator_list):
                continue
            if any(
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "chromium"
                for call in ast.walk(node)
            ):
                unmarked.append(f"{path.name}::{node.name}")
    assert unmarked == [], f"add @pytest.mark.browser to {unmarked}"

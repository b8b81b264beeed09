"""Dependency direction: kernel ← domains ← adapters. Checked on the source (AST)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "satshare"
KERNEL = [
    "db",
    "errors",
    "money",
    "clock",
    "security",
    "faultpoints",
    "watchonly",
    "jsonstrict",
    "i18n",
    "metrics",
    "logs",
]
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
    "webhooks_out",
    "ratelimits",
    "audit",
    "staff",
    "broadcasts",
    "promos",
    "trials",
    "tallies",
]
ADAPTERS = (
    "satshare.admin",
    "satshare.api",
    "satshare.providers",
    "satshare.sim",
    "satshare.cli",
    "satshare.bot",
)
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
    adapters = {"admin", "api", "bot", "providers", "sim", "migrations", "cli", "jobs"}
    assert packages - adapters == set(DOMAINS)


# -- the package graph: layers, cycles, sideways imports -----------------------------------
#
# Every first-level module or package of satshare is in exactly one group below. Imports
# (module level, inside functions and under TYPE_CHECKING alike) may only point downwards:
#
#   composition roots (cli, container, jobs, models, __main__)
#     ↓
#   adapters (api, bot, providers, sim) — never each other
#     ↓
#   domains, in the layers of DOMAIN_LAYERS — only to a lower layer, never sideways
#     ↓
#   kernel (db, errors, money, ...) and the shared modules (config, i18n, ...)

#: Domains from the bottom up. A domain imports only domains on a lower layer, so no cycle
#: can form between them. The outbox (notifications) is a leaf: everybody may queue a
#: message, and it knows nobody's data. Each domain package's docstring names its layer.
DOMAIN_LAYERS: list[set[str]] = [
    # Under everything (the docstrings' layer numbers start above it): any domain's flow
    # writes its change's audit row in the change's own transaction.
    {"audit"},
    {
        "notifications",
        "rates",
        "apikeys",
        "idempotency",
        "onchain",
        # Announced by writers on every layer, like the outbox (#14); the rate-limit counters.
        "webhooks_out",
        "ratelimits",
        # Counts kept by writers on every layer, read by the reports (#15).
        "tallies",
    },
    # Plans: the panel's plan changes carry their audit row (audit is on the layer below).
    {"users", "staff", "plans"},
    {"ledger", "subscriptions"},
    {"affiliates", "promos", "trials"},
    {"payments"},
    {"payouts", "access", "broadcasts"},
    {"reports"},
]
#: Shared by everyone, import only the kernel and each other (never a domain or an adapter).
SHARED = {
    "config",
    "schemas",
    "background",
    "telegram_contract",
    "aftercommit",
    "qr",
    "httppool",
    "__init__",
}
#: Runs beside the domains (the ledger sealer, the migration runner, the job queue, backups):
#: kernel and domains only.
RUNTIME = {"sealer", "migrate", "jobqueue", "backups"}
ADAPTER_PACKAGES = {"admin", "api", "bot", "providers", "sim"}
#: Composition roots wire everything together; they may import anything, adapters included.
ROOTS: dict[str, str] = {
    "cli": "the command line starts the API, the bot, the jobs and the emulators",
    "container": "wires the providers, the domain contexts and the adapters' services",
    "sandbox": "starts the emulators and implements the API's sandbox ports over them",
    "jobs": "the job catalogue runs the domains' use cases, the bot's sender and removal",
    "__main__": "python -m satshare runs the CLI",
    "models": "imports every ORM model (the bot's too) so Alembic sees the whole schema",
}
#: Upward imports that are allowed, as (importer, imported): reason. None: adapters get
#: their services from the composition root (FastAPI dependencies, the bot's runtime and
#: context), never the container.
ALLOWED_UPWARDS: dict[tuple[str, str], str] = {}
#: Adapter-to-adapter imports that are allowed, by importing file and imported package, each
#: with its reason. None: the sandbox pages use ports (api/ports.py) that the sandbox module
#: implements over the emulators. (``cli`` is a composition root, so it is not listed.)
ALLOWED_SIDEWAYS: dict[tuple[str, str], str] = {}


def _first_level(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "satshare":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _resolve(path: Path, node: ast.ImportFrom) -> list[str]:
    """The absolute satshare names an ``ImportFrom`` reaches (relative ones resolved)."""
    if node.level == 0:
        module = node.module or ""
        if module == "satshare":  # from satshare import x: x may be a module or a name
            return [
                f"satshare.{alias.name}"
                if (PACKAGE / f"{alias.name}.py").exists() or (PACKAGE / alias.name).is_dir()
                else "satshare"
                for alias in node.names
            ]
        return [module]
    package = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = package[: len(package) - node.level]
    return [".".join([*package, *([node.module] if node.module else [])])]


def _group(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def package_graph() -> dict[str, dict[str, list[str]]]:
    """importer group → imported group → the places (file:line) that import it."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _group(path)
        if source == "migrations":
            continue
        graph.setdefault(source, {})
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = _resolve(path, node)
            else:
                continue
            for name in names:
                target = _first_level(name)
                if target is not None and target != source:
                    where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
                    graph[source].setdefault(target, []).append(where)
    return graph


def _cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph()
    cycles = _cycles(graph)
    detail = {
        " ↔ ".join(cycle): {
            f"{a} → {b}": graph[a][b] for a in cycle for b in cycle if b in graph.get(a, {})
        }
        for cycle in cycles
    }
    assert cycles == [], f"import cycles: {detail}"


def _rank(group: str) -> tuple[str, int]:
    for layer, members in enumerate(DOMAIN_LAYERS):
        if group in members:
            return "domain", layer
    if group in KERNEL or group in SHARED:
        return "kernel", -1
    if group in RUNTIME:
        return "runtime", len(DOMAIN_LAYERS)
    if group in ADAPTER_PACKAGES:
        return "adapter", len(DOMAIN_LAYERS) + 1
    if group in ROOTS:
        return "root", len(DOMAIN_LAYERS) + 2
    raise AssertionError(f"satshare.{group} is in no group of test_architecture.py: place it")


def test_every_import_points_down_the_layers() -> None:
    wrong = {}
    for source, targets in package_graph().items():
        kind, level = _rank(source)
        for target, where in targets.items():
            target_kind, target_level = _rank(target)
            if kind == "root" or (source, target) in ALLOWED_UPWARDS:
                continue
            if kind == "kernel":
                allowed = target_kind == "kernel"
            elif kind == "adapter" and target_kind == "adapter":
                where = [w for w in where if (w.split(":")[0], target) not in ALLOWED_SIDEWAYS]
                allowed = not where
            else:
                allowed = target_level < level or (target_kind == "kernel")
            if not allowed:
                wrong[f"{source} ({kind}) → {target} ({target_kind})"] = where
    assert wrong == {}, f"imports against the layering: {wrong}"


def test_every_module_is_placed_in_one_group() -> None:
    groups = {_group(path) for path in PACKAGE.glob("*.py")}
    groups |= {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    groups.discard("migrations")
    placed = [
        *DOMAIN_LAYERS,
        set(KERNEL),
        SHARED,
        RUNTIME,
        ADAPTER_PACKAGES,
        set(ROOTS),
    ]
    for group in groups:
        assert sum(group in members for members in placed) == 1, group


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


# -- one rule for SQL ----------------------------------------------------------------------
#
# Queries are built only in a package's repository.py. Adapters (the API, the bot, the CLI,
# the jobs) neither import SQLAlchemy nor open units of work: they call use cases (each
# domain's flows.py, or a read like payouts/overview.py) that do.

SQL_CONSTRUCTS = {
    "select",
    "text",
    "update",
    "delete",
    "insert",
    "func",
    "exists",
    "or_",
    "and_",
    "case",
    "literal",
    "union",
    "union_all",
}
#: Modules besides the repositories that may build SQL, each with its reason.
SQL_ALLOWED: dict[str, str] = {
    "db.py": "the kernel: insert_ignore (ON CONFLICT DO NOTHING per dialect) and the health "
    "check's ping",
    "migrate.py": "reads the revision in Alembic's own table (alembic_version) at every start "
    "and /ready without loading Alembic (#15)",
    "backups.py": "restore lists and replaces the whole PostgreSQL schema (information_schema, "
    "DROP SCHEMA): database administration beside pg_restore, no domain's rows",
}
UNIT_OF_WORK = {"reading", "transaction", "deferred_commit", "each_statement_alone"}
#: Adapter modules that may import SQLAlchemy or open a unit of work, each with its reason.
ADAPTER_DB_ALLOWED: dict[str, str] = {
    "api/idempotency.py": "middleware plumbing, not a use case: it claims the key, holds the "
    "request's commits (Database.deferred_commit) and stores the answer with the last one",
    "bot/models.py": "the bot's own table: ids of processed Telegram updates (at-least-once "
    "delivery)",
    "admin/views.py": "SQLAdmin's model views query through the engine they are given (that "
    "is the library's job: lists, search, filters, export); the module only catches "
    "SQLAlchemy's StatementError to answer an id out of range with 404 and reads the models' "
    "column names (inspect) to label every column, and opens no unit of work",
}


def _sqlalchemy_imports(tree: ast.AST) -> set[str]:
    """The names imported from SQLAlchemy (``*`` for a whole-module import)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == "sqlalchemy" for alias in node.names
        ):
            names.add("*")
    return names


def _units_of_work(tree: ast.AST) -> list[int]:
    """Lines calling ``<anything>.reading()``, ``.transaction()``, ``.deferred_commit()`` or
    ``.each_statement_alone()``."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in UNIT_OF_WORK
    ]


def _modules() -> list[tuple[str, ast.AST]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("migrations", "sim"):  # Alembic's SQL; the emulators' own
            continue
        found.append((relative.as_posix(), ast.parse(path.read_text())))
    return found


def test_sql_is_built_only_in_repositories() -> None:
    building = {
        name: sorted(constructs)
        for name, tree in _modules()
        if (constructs := _sqlalchemy_imports(tree) & SQL_CONSTRUCTS)
        and not name.endswith("/repository.py")
        and name not in SQL_ALLOWED
    }
    assert building == {}, f"move these queries to the package's repository.py: {building}"


def _is_adapter(name: str) -> bool:
    return name.split("/")[0] in ("admin", "api", "bot", "cli", "jobs")


def test_adapters_neither_import_sqlalchemy_nor_open_units_of_work() -> None:
    touching = {}
    for name, tree in _modules():
        if not _is_adapter(name) or name.endswith("/repository.py") or name in ADAPTER_DB_ALLOWED:
            continue
        imported, lines = _sqlalchemy_imports(tree), _units_of_work(tree)
        if imported or lines:
            touching[name] = {"sqlalchemy": sorted(imported), "units of work at": lines}
    assert touching == {}, f"call a use case (flows.py) instead: {touching}"


def test_the_sql_rules_see_what_they_forbid() -> None:
    """The checks above would notice: a query construct, a whole-module import and a unit of
    work opened on any object."""
    tree = ast.parse(
        "import sqlalchemy\n"
        "from sqlalchemy import select, Select\n"
        "async def f(db):\n"
        "    async with db.reading() as s:\n"
        "        async with x.y.transaction(effect=False):\n"
        "            pass\n"
    )
    assert _sqlalchemy_imports(tree) & SQL_CONSTRUCTS == {"select"}
    assert "*" in _sqlalchemy_imports(tree)
    assert _units_of_work(tree) == [4, 5]


def test_no_api_dependency_or_route_runs_in_a_worker_thread() -> None:
    """FastAPI runs a plain ``def`` route or dependency in a worker thread: a thread hop per
    request for what only reads ``request.app.state`` (#15). Every one is ``async def``."""
    import importlib
    import inspect

    from fastapi import APIRouter
    from fastapi.dependencies.models import Dependant
    from fastapi.routing import APIRoute

    from satshare.api.platforms import PLATFORM_GUARD

    def is_async(call: object) -> bool:
        return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
            getattr(call, "__call__", None)  # noqa: B004 - a class instance used as dependency
        )

    threaded: set[str] = set()

    def walk(dependant: Dependant, where: str) -> None:
        for sub in dependant.dependencies:
            if sub.call is not None and not is_async(sub.call):
                threaded.add(f"{getattr(sub.call, '__qualname__', sub.call)} ({where})")
            walk(sub, where)

    from fastapi.dependencies.utils import get_dependant

    guard = PLATFORM_GUARD.dependency  # added to every router by create_app
    assert guard is not None and is_async(guard)
    walk(get_dependant(path="/", call=guard), "every route")
    routes = 0
    for path in sorted((PACKAGE / "api" / "routes").glob("*.py")):
        module = importlib.import_module(f"satshare.api.routes.{path.stem}")
        for router in [v for v in vars(module).values() if isinstance(v, APIRouter)]:
            for route in router.routes:
                if isinstance(route, APIRoute):
                    routes += 1
                    if not is_async(route.endpoint):
                        threaded.add(f"{route.endpoint.__qualname__} ({route.path})")
                    walk(route.dependant, route.path)
    assert routes > 50
    assert threaded == set()


def test_every_api_router_reads_json_bodies_strictly() -> None:
    """Each router's routes decode bodies with ``StrictJSONRoute`` (a key named twice is a
    400, never its last value): a router declared without it would quietly accept them."""
    import pkgutil
    from importlib import import_module

    from fastapi import APIRouter

    import satshare.api.routes as routes_package
    from satshare.api.routing import StrictJSONRoute

    routers = []
    for info in pkgutil.iter_modules(routes_package.__path__):
        module = import_module(f"{routes_package.__name__}.{info.name}")
        routers += [
            (info.name, name, value)
            for name, value in vars(module).items()
            if isinstance(value, APIRouter)
        ]
    assert len(routers) >= 20
    loose = [(m, n) for m, n, r in routers if r.route_class is not StrictJSONRoute]
    assert loose == []

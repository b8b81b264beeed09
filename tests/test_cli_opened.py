"""Every command opens the container through cli/common.opened(): when it cannot open, the
command prints one line saying what to fix, changes nothing, and exits (serve with 1, an
admin command with 2)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from satshare.cli import app
from tests.servers import free_port

runner = CliRunner()


@pytest.fixture(autouse=True)
def bare_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SATSHARE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("command", "code"), [(["serve", "--port", str(free_port())], 1), (["api-key", "list"], 2)]
)
def test_an_unmigrated_database_is_refused_with_the_fix(
    command: list[str], code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = tmp_path / "fresh.db"
    monkeypatch.setenv("SATSHARE_DATABASE__URL", f"sqlite:///{fresh}")
    result = runner.invoke(app, command)
    assert result.exit_code == code, result.output
    assert result.stderr.strip().splitlines() == [
        f"satshare: there is no SQLite database at {fresh}: run `satshare migrate` to create "
        "it, or run this where your satshare.yaml is (or give --config)"
    ]
    assert not fresh.exists()  # not created empty by asking


def test_an_empty_database_is_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()  # a file, but no SatShare schema in it
    monkeypatch.setenv("SATSHARE_DATABASE__URL", f"sqlite:///{empty}")
    result = runner.invoke(app, ["api-key", "list"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"satshare: the SQLite database {empty} holds no SatShare schema: run `satshare "
        "migrate` first (or give --config the satshare.yaml of the database you meant)"
    ]


@pytest.mark.parametrize(
    ("command", "code"),
    [(["serve", "--port", str(free_port())], 1), (["ledger", "verify"], 2)],
)
def test_an_unreachable_database_is_named_with_the_setting_to_check(
    command: list[str], code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql://satshare@127.0.0.1:{_closed_port()}/satshare"
    monkeypatch.setenv("SATSHARE_DATABASE__URL", url)
    result = runner.invoke(app, command)
    assert result.exit_code == code, result.output
    assert "cannot reach the database" in result.stderr
    assert "check database.url" in result.stderr

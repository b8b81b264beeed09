"""The deployment files (issue #11) as far as this machine can check them without Docker:
compose.yaml, the Dockerfile and the systemd units run only real satshare commands and set
only real settings, and the image's HEALTHCHECK command passes against a running server."""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import typer.main
import yaml
from typer.testing import CliRunner

from satshare.cli import app
from satshare.config import unknown_environment
from tests.conftest import Stack

ROOT = Path(__file__).parents[1]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def satshare_commands() -> set[str]:
    group = typer.main.get_command(app)
    return set(group.commands)  # type: ignore[attr-defined]


def check_command(argv: list[str], where: str) -> None:
    """``argv`` is a satshare command line: its command exists and ``--help`` on it
    answers."""
    known = satshare_commands()
    assert argv[0] in known, f"{where}: `satshare {argv[0]}` is no command ({sorted(known)})"
    result = CliRunner().invoke(app, [argv[0], "--help"])
    assert result.exit_code == 0, f"{where}: {result.output}"


def check_environment(variables: dict[str, str], where: str) -> None:
    named = {k: v for k, v in variables.items() if k.startswith("SATSHARE_")}
    unknown = list(unknown_environment(named))
    assert unknown == [], f"{where}: {unknown}"


def test_compose_has_the_topology_of_the_issue() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "migrate", "api", "worker", "caddy"}
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["migrate"]["restart"] == "no"
    for role in ("api", "worker"):
        assert services[role]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "name api" in caddyfile and "port 8000" in caddyfile
    assert services["caddy"]["volumes"][0].startswith("./deploy/Caddyfile:")


def test_compose_runs_real_commands_with_real_settings() -> None:
    services = compose()["services"]
    satshare = {name: s for name, s in services.items() if s.get("image") == "satshare:latest"}
    assert set(satshare) == {"migrate", "api", "worker"}
    for name, service in satshare.items():
        check_command(service["command"], f"compose.yaml {name}")
        check_environment(service["environment"], f"compose.yaml {name}")
        assert "SATSHARE_DATABASE__URL" in service["environment"]


def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if line and not line.startswith("#")]


def test_dockerfile_is_slim_non_root_and_checks_health() -> None:
    lines = dockerfile()
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert bases and all(re.fullmatch(r"python:3\.\d+-slim", base) for base in bases)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    entry = next(line for line in lines if line.startswith("ENTRYPOINT "))
    assert json.loads(entry.split(" ", 1)[1]) == ["satshare"]
    cmd = next(line for line in lines if line.startswith("CMD "))
    check_command(json.loads(cmd.split(" ", 1)[1]), "Dockerfile CMD")
    env = next(line for line in lines if line.startswith("ENV "))
    pairs = dict(item.split("=", 1) for item in shlex.split(env[4:]))
    check_environment(pairs, "Dockerfile ENV")


def healthcheck() -> list[str]:
    line = next(line for line in dockerfile() if line.startswith("HEALTHCHECK "))
    command: list[str] = json.loads(line.split(" CMD ", 1)[1])
    return command


async def run_healthcheck(port: int) -> int:
    """The HEALTHCHECK's command (exec form: JSON, as Docker reads it), run as Docker runs
    it with the server port of the image's ENV."""
    argv = healthcheck()
    assert argv[0] == "python"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv[1:],
        env={**os.environ, "SATSHARE_SERVER__PORT": str(port)},
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), 30)


async def test_the_image_healthcheck_passes_against_a_server(stack: Stack) -> None:
    assert await run_healthcheck(stack.server.port) == 0
    assert await run_healthcheck(1) != 0  # and fails when nothing answers


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((ROOT / "deploy" / "systemd" / name).read_text())
    return parser


def test_systemd_units_run_real_commands_with_real_settings() -> None:
    units = sorted(p.name for p in (ROOT / "deploy" / "systemd").iterdir())
    assert units == [
        "satshare-backup.service",
        "satshare-backup.timer",
        "satshare-worker@.service",
        "satshare.service",
    ]
    for name in units:
        if not name.endswith(".service"):
            continue
        service = unit(name)["Service"]
        environment = dict(
            item.split("=", 1) for item in shlex.split(service.get("Environment", ""))
        )
        check_environment(environment, name)
        commands = [service[k] for k in ("ExecStartPre", "ExecStart") if k in service]
        found = 0
        for command in commands:
            for match in re.finditer(r"/opt/satshare/venv/bin/satshare ([a-z-]+)", command):
                check_command([match.group(1)], name)
                found += 1
        assert found, f"{name} runs no satshare command"
    timer = unit("satshare-backup.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"

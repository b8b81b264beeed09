"""Start-up time and idle memory of `satshare serve`, next to a bare FastAPI app.

Starts each configuration as a separate process N times (the configurations take turns, so
a busy machine slows them all alike) and measures, per start:

- the time from launching the interpreter to the first ``GET /health`` answered 200, and
  the CPU seconds the process had used by then;
- the resident memory (VmRSS from /proc) once the process has idled for ``--settle``
  seconds after that (the sandbox's bot, the jobs and the sealer have started by then).

The baseline is a bare FastAPI + uvicorn app with one ``/health`` route, started the same
way (``python -m bench.startup --hello PORT``). The table prints medians and each one's
ratio to the baseline's median; the issue's goals (#15) are absolute: idle RSS <= 110 MiB
and /health within 1.2 s.

    .venv/bin/python -m bench.startup --runs 5

The database named by --database-url is dropped and recreated (its name must contain
"bench"); results are also written to bench/results/startup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.settlement import duration, free_port, positive_int, postgresql_url, recreate_database

ROOT = Path(__file__).resolve().parents[1]
GOAL_RSS_MIB = 110
GOAL_SECONDS = 1.2


@dataclass
class Scenario:
    name: str
    #: The command after the interpreter (``python -m …``); {port} is filled in per start.
    argv: list[str]
    #: satshare.yaml for it (``--config``), or None for the baseline.
    config: dict[str, object] | None = None
    rss_mib: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)


def hello(port: int) -> None:
    """The baseline: FastAPI and uvicorn with one route, nothing else."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def vm_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of proc(5); the split starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_once(
    scenario: Scenario, config_path: str | None, settle: float, env: dict[str, str]
) -> tuple[float, float, float]:
    """One start: (seconds to /health 200, CPU seconds by then, idle RSS in MiB)."""
    port = free_port()
    argv = [sys.executable, *[part.format(port=port) for part in scenario.argv]]
    if config_path is not None:
        argv[1:1] = ["-m", "satshare", "--config", config_path]
        argv += ["serve", "--port", str(port)]
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env
    )
    try:
        url = f"http://127.0.0.1:{port}/health"
        with httpx.Client(timeout=2.0) as client:
            while True:
                if proc.poll() is not None:
                    error = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"{scenario.name} exited early:\n{error}")
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
        seconds, cpu = time.perf_counter() - started, cpu_seconds(proc.pid)
        time.sleep(settle)
        return seconds, cpu, vm_rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_config(settings: dict[str, object]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        json.dump(settings, handle)  # YAML is a superset of JSON
        return handle.name


def scenarios(database_url: str, sqlite_path: str) -> list[Scenario]:
    quiet: dict[str, object] = {"log_level": "warning"}
    plans = [{"id": "bench", "title": "Bench", "price_sats": 21_000, "duration_days": 30}]
    return [
        Scenario("baseline: FastAPI + uvicorn hello", ["-m", "bench.startup", "--hello", "{port}"]),
        Scenario(
            "serve, PostgreSQL, no sandbox",
            [],
            {
                **quiet,
                "database": {"url": database_url},
                # A processor is configured (not the sandbox); serve does not call it while
                # starting, so nothing needs to listen there.
                "btcpay": {
                    "url": "http://127.0.0.1:9",
                    "api_key": "benchbtcpayapikey0123456789",
                    "store_id": "benchstore",
                    "webhook_secret": "benchwebhookhmac0123456789",
                },
                "plans": plans,
            },
        ),
        Scenario("serve, PostgreSQL, sandbox", [], {**quiet, "database": {"url": database_url}}),
        Scenario(
            "serve, SQLite, sandbox",
            [],
            {**quiet, "database": {"url": f"sqlite:///{sqlite_path}"}},
        ),
    ]


def migrate(config_path: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "satshare", "--config", config_path, "migrate"],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        type=postgresql_url,
        default="postgresql://postgres@127.0.0.1:5432/satshare_bench_startup",
        help="dropped and recreated: its name must contain 'bench'",
    )
    parser.add_argument("--runs", type=positive_int, default=5, help="starts of each configuration")
    parser.add_argument(
        "--settle", type=duration, default=3.0, help="seconds idle after /health before RSS"
    )
    parser.add_argument("--only", help="run only the configurations whose name contains this")
    parser.add_argument("--hello", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hello is not None:
        hello(args.hello)
        return

    names = [s.name for s in scenarios(args.database_url, "")[1:]]
    if args.only and not any(args.only in name for name in names):
        parser.error(f"--only {args.only!r} matches none of: {', '.join(names)}")
    asyncio.run(recreate_database(args.database_url))
    workdir = tempfile.mkdtemp(prefix="satshare-startup-")
    chosen = scenarios(args.database_url, os.path.join(workdir, "startup.db"))
    if args.only:
        chosen = [s for s in chosen if s.name == chosen[0].name or args.only in s.name]
    configs = {}
    # Bytecode cached as an installed package has it (pip compiles at install time; the
    # editable checkout would otherwise compile every module at every start when
    # PYTHONDONTWRITEBYTECODE is set): a cache of our own, filled by an uncounted first start.
    env = {**os.environ, "PYTHONPYCACHEPREFIX": os.path.join(workdir, "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        for scenario in chosen:
            if scenario.config is not None:
                configs[scenario.name] = write_config(scenario.config)
                migrate(configs[scenario.name])
        for scenario in chosen:
            start_once(scenario, configs.get(scenario.name), 0, env)
        for run in range(args.runs):
            for scenario in chosen:
                seconds, cpu, rss = start_once(
                    scenario, configs.get(scenario.name), args.settle, env
                )
                scenario.seconds.append(seconds)
                scenario.cpu_seconds.append(cpu)
                scenario.rss_mib.append(rss)
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr, flush=True)
    finally:
        for path in configs.values():
            os.unlink(path)
        shutil.rmtree(workdir, ignore_errors=True)  # the SQLite file and the bytecode cache

    base = chosen[0]
    base_rss, base_seconds = median(base.rss_mib), median(base.seconds)
    print(
        f"\n{args.runs} starts each; medians; {platform.python_version()} on "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    header = (
        f"{'configuration':36} {'idle RSS':>10} {'ratio':>7} {'to /health':>11} "
        f"{'ratio':>7} {'CPU s':>6}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for scenario in chosen:
        rss, seconds = median(scenario.rss_mib), median(scenario.seconds)
        cpu = median(scenario.cpu_seconds)
        print(
            f"{scenario.name:36} {rss:7.1f} MiB {rss / base_rss:7.2f} {seconds:9.2f} s "
            f"{seconds / base_seconds:7.2f} {cpu:6.2f}"
        )
        rows.append(
            {
                "configuration": scenario.name,
                "rss_mib": scenario.rss_mib,
                "seconds_to_health": scenario.seconds,
                "cpu_seconds_to_health": scenario.cpu_seconds,
                "median_rss_mib": rss,
                "median_seconds": seconds,
                "rss_ratio": rss / base_rss,
                "seconds_ratio": seconds / base_seconds,
            }
        )
    print(f"goals (#15): idle RSS <= {GOAL_RSS_MIB} MiB, /health within {GOAL_SECONDS} s")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "startup.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()

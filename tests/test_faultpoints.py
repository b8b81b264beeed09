"""The fault-point mechanism the fault bench relies on (the bench itself is not run in CI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from satshare import faultpoints

pytestmark = pytest.mark.slow  # every test runs child interpreters

# Reaches point "x" up to five times, saying so before each; then "survived".
REACH_FIVE_TIMES = """
from satshare import faultpoints
for i in range(1, 6):
    print("reaching", i, flush=True)
    faultpoints.reached("x")
print("survived", flush=True)
"""


def run_child(
    code: str, spec: str | None, seed: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATSHARE_FAULT_")}
    if spec is not None:
        env[faultpoints.ENV] = spec
    if seed is not None:
        env[faultpoints.SEED_ENV] = seed
    return subprocess.run(  # noqa: S603 - this interpreter running code from this test
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def reaches(stdout: str) -> list[int]:
    return [int(line.split()[1]) for line in stdout.splitlines() if line.startswith("reaching")]


def test_without_the_variable_reaching_a_point_does_nothing() -> None:
    assert os.environ.get(faultpoints.ENV) is None  # this test process is not armed
    for _ in range(3):
        assert faultpoints.reached("settle.after_claim") is None
    child = run_child(REACH_FIVE_TIMES, None)
    assert child.returncode == 0, child.stderr
    assert reaches(child.stdout) == [1, 2, 3, 4, 5]
    assert "survived" in child.stdout


def test_the_process_is_killed_at_the_nth_reach() -> None:
    child = run_child(REACH_FIVE_TIMES, "x=3")
    assert child.returncode == -signal.SIGKILL
    assert reaches(child.stdout) == [1, 2, 3]
    assert "faultpoint: SIGKILL at x (reach 3)" in child.stderr


def test_other_points_are_left_alone() -> None:
    child = run_child(REACH_FIVE_TIMES, "y=1, settle.after_claim=1")
    assert child.returncode == 0, child.stderr
    assert "survived" in child.stdout


def test_a_delay_kills_after_the_point_returned() -> None:
    # The kill comes from a timer while the process is busy elsewhere (a provider call).
    code = (
        "import time\nfrom satshare import faultpoints\n"
        "faultpoints.reached('payout.during_call')\nprint('returned', flush=True)\n"
        "time.sleep(30)\nprint('survived', flush=True)\n"
    )
    child = run_child(code, "payout.during_call=1@0.05")
    assert child.returncode == -signal.SIGKILL
    assert child.stdout.split() == ["returned"]


def test_a_probability_kills_at_the_same_reach_for_the_same_seed() -> None:
    first = run_child(REACH_FIVE_TIMES, "x=p0.5", seed="7")
    again = run_child(REACH_FIVE_TIMES, "x=p0.5", seed="7")
    assert first.returncode == again.returncode == -signal.SIGKILL
    assert reaches(first.stdout) == reaches(again.stdout)
    assert run_child(REACH_FIVE_TIMES, "x=p1").returncode == -signal.SIGKILL
    assert run_child(REACH_FIVE_TIMES, "x=p0").returncode == 0


def test_a_spec_it_cannot_read_stops_the_process_naming_it() -> None:
    for bad in ("x", "x=0", "x=two", "x=1@-1", "x=p2", "=3"):
        child = run_child(REACH_FIVE_TIMES, bad)
        assert child.returncode == 1, bad
        assert f"ValueError: {faultpoints.ENV}: " in child.stderr, child.stderr
        assert "reaching" not in child.stdout
    child = run_child(REACH_FIVE_TIMES, "x=1", seed="many")
    assert f"ValueError: {faultpoints.SEED_ENV} must be an integer" in child.stderr

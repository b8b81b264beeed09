"""Schemathesis against /openapi.json: every operation, generated requests with an admin key,
each answer checked against the document (status documented, content type, schema, no 5xx).
Runs over real HTTP against the stack; the generator runs in a worker thread so the server
keeps answering on the test's event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from tests.conftest import Stack

#: Generated cases per operation: enough to reach every documented answer of the ~40
#: operations in about a minute on two cores.
EXAMPLES = 8
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


def _fuzz(spec: dict[str, Any], base_url: str, key: str) -> tuple[int, list[str]]:
    schema = schemathesis.openapi.from_dict(spec)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        label = operation.label

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            try:
                case.call_and_validate(
                    base_url=base_url,
                    headers={"Authorization": f"Bearer {key}"},
                    checks=CHECKS,
                )
            except (Exception, FailureGroup) as exc:  # every finding, not just the first
                failures.append(f"{label}: {str(exc)[:600]}")  # noqa: B023 - run() runs here

        run()
    return operations, failures


@pytest.mark.slow
async def test_every_operation_answers_as_documented(stack: Stack) -> None:
    spec = (await stack.client.get("/openapi.json")).json()
    operations, failures = await asyncio.to_thread(_fuzz, spec, stack.url, stack.admin_key)
    assert operations >= 40
    assert failures == [], "\n\n".join(failures)


async def test_every_error_answer_is_documented_as_a_problem(stack: Stack) -> None:
    spec = (await stack.client.get("/openapi.json")).json()
    errors = [
        (f"{method.upper()} {path}", code, sorted(response.get("content", {})))
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        for code, response in operation["responses"].items()
        if code.startswith(("4", "5"))
    ]
    assert len(errors) > 100
    assert [e for e in errors if e[2] != ["application/problem+json"]] == []

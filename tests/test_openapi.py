"""The OpenAPI document: every operation summarised, with request and error examples; every
error answer a problem; every request string bounded (issue #8, items 7 and 11)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from satshare.api.problems import MAX_BODY_BYTES
from satshare.api.routes.webhooks import MAX_WEBHOOK_BYTES
from tests.browser import offline_context
from tests.conftest import Stack
from tests.qrkit import keep

PROBLEM = "application/problem+json"


async def test_every_operation_is_documented_with_examples(stack: Stack) -> None:
    spec: dict[str, Any] = (await stack.client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert "Problem" in spec["components"]["schemas"]
    schemas = spec["components"]["schemas"]
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if path.startswith("/api/")
    ]
    assert len(operations) >= 14
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        errors = {code: r for code, r in op["responses"].items() if code.startswith(("4", "5"))}
        assert errors, f"{where} documents no error responses"
        for code, response in errors.items():
            content = response["content"]["application/problem+json"]
            assert content["example"]["status"] == int(code), where
        if "requestBody" in op:
            body = op["requestBody"]["content"]["application/json"]
            ref = body.get("schema", {}).get("$ref")
            has_example = "example" in body or "examples" in body
            if ref:
                has_example |= "examples" in schemas[ref.split("/")[-1]]
            assert has_example, f"{where} request body has no example"
        success = next(r for code, r in op["responses"].items() if code.startswith("2"))
        content = success.get("content", {}).get("application/json", {})
        ref = content.get("schema", {}).get("$ref")
        if ref and not path.endswith("/types"):
            name = ref.split("/")[-1]
            assert "examples" in schemas[name] or name.startswith("PageOf"), f"{where} {name}"
        if method == "post" and not path.startswith("/api/v1/webhooks/"):
            assert any(p["name"] == "Idempotency-Key" for p in op.get("parameters", [])), where
    security = spec["components"]["securitySchemes"]
    assert security["ApiKey"]["scheme"] == "bearer"


@pytest.mark.browser
async def test_the_api_key_comes_first_in_the_authorize_dialog(stack: Stack) -> None:
    spec: dict[str, Any] = (await stack.client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert list(schemes) == ["ApiKey", "MetricsToken"]
    schemathesis.openapi.from_dict(spec).validate()  # the OpenAPI 3.1 meta-schema, offline
    # Still the two schemes the operations name, each a bearer token.
    used = {
        name for _, _, op in _operations(spec) for item in op.get("security", []) for name in item
    }
    assert used == set(schemes)
    assert all(
        scheme == {**scheme, "type": "http", "scheme": "bearer"} for scheme in schemes.values()
    )
    # What a person sees: Swagger UI's dialog, in the document's order.
    async with offline_context() as (context, outside):
        page = await context.new_page()
        await page.goto(f"{stack.url}/docs")
        await page.click(".btn.authorize")
        await page.wait_for_selector(".modal-ux .auth-container h4")
        titles = await page.locator(".modal-ux .auth-container h4").all_inner_texts()
        keep(await page.screenshot(), "docs-authorize")
        assert [title.split()[0] for title in titles] == ["ApiKey", "MetricsToken"], titles
        assert outside == []


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def _scalars(
    spec: dict[str, Any], schema: dict[str, Any], where: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every string and integer shape a request value can take, with where it is."""
    schema = _resolve(spec, schema)
    for option in schema.get("anyOf") or schema.get("oneOf") or [schema]:
        option = _resolve(spec, option)
        kind = option.get("type")
        if kind in ("string", "integer"):
            yield where, option
        elif kind == "object":
            for name, sub in option.get("properties", {}).items():
                yield from _scalars(spec, sub, f"{where}.{name}")
        elif kind == "array":
            yield from _scalars(spec, option["items"], f"{where}[]")


async def test_every_error_answer_is_a_problem_and_each_kind_is_documented(stack: Stack) -> None:
    spec: dict[str, Any] = (await stack.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 body is never sent
    for path, method, op in _operations(spec):
        where = f"{method.upper()} {path}"
        documented = set(op["responses"])
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert list(response["content"]) == [PROBLEM], f"{where} {code}"
                schema = response["content"][PROBLEM]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, f"{where} {code}"
        # A NUL anywhere in the URL; any body over the limit, also where none is taken (the
        # size is judged before routing).
        expected = {"413", "422"}
        if op.get("security"):
            expected |= {"401", "403"}
        if "requestBody" in op:
            expected |= {"400", "413", "422"}  # not JSON, over the body limit, a field wrong
            # Its example states the limit this operation has.
            limit = MAX_WEBHOOK_BYTES if path.startswith("/api/v1/webhooks/") else MAX_BODY_BYTES
            if "413" in documented:
                detail = op["responses"]["413"]["content"][PROBLEM]["example"]["detail"]
                assert detail.startswith(f"the body is at most {limit} bytes;"), where
        if method == "post" and not path.startswith("/api/v1/webhooks/"):
            expected |= {"400", "409"}  # Idempotency-Key malformed, or reused
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            expected |= {"404"}  # nothing has that id
        assert expected <= documented, f"{where} lacks {sorted(expected - documented)}"
    webhook = spec["paths"]["/api/v1/webhooks/{provider}"]["post"]["responses"]
    assert {"400", "401", "404", "413", "422", "502"} <= set(webhook)
    refund = spec["paths"]["/api/v1/invoices/{invoice_id}/refund"]["post"]["responses"]
    assert {"409", "503"} <= set(refund)


async def test_every_request_string_has_a_max_length_and_every_integer_bounds(
    stack: Stack,
) -> None:
    spec: dict[str, Any] = (await stack.client.get("/openapi.json")).json()
    checked = 0
    for path, method, op in _operations(spec):
        where = f"{method.upper()} {path}"
        values = [
            item
            for parameter in op.get("parameters", [])
            for item in _scalars(spec, parameter["schema"], f"{where} {parameter['name']}")
        ]
        if "requestBody" in op:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            values += list(_scalars(spec, body, f"{where} body"))
        for name, schema in values:
            checked += 1
            if schema["type"] == "string" and "enum" not in schema and "const" not in schema:
                assert "maxLength" in schema, f"{name} has no maxLength"
            if schema["type"] == "integer":
                assert "maximum" in schema, f"{name} has no maximum"
                assert "minimum" in schema, f"{name} has no minimum"
                # FastAPI's OpenAPI model keeps bounds as floats: 2**63 - 1 reads as 2**63.
                assert schema["maximum"] <= 2**63, name
    assert checked > 50


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/users", "GET, POST"),
        ("DELETE", "/api/v1/users/1", "GET, PUT"),
        ("PATCH", "/api/v1/transactions/1", "GET, PUT"),
        ("GET", "/api/v1/payouts/1/approve", "POST"),
        ("PUT", "/api/v1/affiliates/1/suspension", "DELETE, POST"),
    ],
)
async def test_405_names_the_allowed_methods(
    stack: Stack, method: str, path: str, allow: str
) -> None:
    response = await stack.client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 405
    assert problem["type"] == "/problems/method-not-allowed"
    assert allow in problem["detail"]

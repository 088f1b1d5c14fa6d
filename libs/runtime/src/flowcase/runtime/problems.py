"""Errors in one documented shape: RFC 9457 problem details (`application/problem+json`)."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field; empty for the whole body.")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details, with `errors` listing every failing field."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "2 fields are invalid",
                    "errors": [
                        {"field": "payload.amount", "reason": "Input should be a valid number"},
                        {"field": "requester", "reason": "Field required"},
                    ],
                }
            ]
        }
    )

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class ProblemError(Exception):
    """Raise from a route to answer with a problem; extra fields join the body (e.g. `allowed`)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.problem = Problem(title=title, status=status, detail=detail, errors=errors or [])
        self.headers = headers
        self.extra = extra


def invalid_fields(errors: list[FieldError]) -> ProblemError:
    """The 422 of invalid input: every failing field with its reason."""
    count = len(errors)
    return ProblemError(
        422,
        "Unprocessable Content",
        f"{count} field{'s are' if count != 1 else ' is'} invalid",
        errors=errors,
    )


def problem_response(
    problem: Problem, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(
        {**problem.model_dump(exclude_none=True), **extra},
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def field_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        # FastAPI prefixes the location with where it came from ("body", "query", …).
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:] if loc[0] == "body" else loc
        errors.append(FieldError(field=".".join(loc), reason=str(err.get("msg", ""))))
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.problem.model_copy(update={"instance": request.url.path}),
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc)
        return problem_response(
            Problem(
                title="Unprocessable Content",
                status=422,
                detail=invalid_fields(errors).problem.detail,
                instance=request.url.path,
                errors=errors,
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI's answer to a body it cannot even decode: invalid input like any other,
            # with the documented status and the reason.
            return problem_response(
                Problem(
                    title="Unprocessable Content",
                    status=422,
                    detail="the body is not UTF-8 JSON",
                    instance=request.url.path,
                    errors=[FieldError(field="", reason=f"not UTF-8: {exc.__cause__.reason}")],
                )
            )
        return problem_response(
            Problem(
                title=_reason(exc.status_code),
                status=exc.status_code,
                detail=str(exc.detail) if exc.detail else None,
                instance=request.url.path,
            ),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            Problem(title="Internal Server Error", status=500, instance=request.url.path)
        )


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (401, "No valid bearer token: see the WWW-Authenticate header"),
        (403, "The token's roles do not allow this"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Request body too large"),
        (415, "The body is not of a media type this operation reads"),
        (422, "Invalid input: every failing field and the reason"),
        (429, "Too many requests; retry after the Retry-After header"),
        (503, "A dependency is unavailable; retry after the Retry-After header"),
    )
}


def document_problems_as_problem_json(app: FastAPI) -> None:
    """Move every documented problem response to its media type, `application/problem+json`.

    FastAPI files an extra response's model under `application/json` (or under the route's own
    media type, `text/html` for a page), and documents a 422 of its own (`HTTPValidationError`)
    on every operation with input; the body the handlers send is a `Problem` as
    `application/problem+json`, and the OpenAPI document should say what is sent.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        problem_ref = "#/components/schemas/Problem"
        fastapi_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if content.get("application/json", {}).get("schema") == fastapi_422:
                        content["application/json"] = {"schema": {"$ref": problem_ref}}
                    for media_type, filed in list(content.items()):
                        if (
                            media_type != PROBLEM_JSON
                            and filed.get("schema", {}).get("$ref") == problem_ref
                        ):
                            content[PROBLEM_JSON] = {**filed, **content.get(PROBLEM_JSON, {})}
                            del content[media_type]
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for replaced in ("HTTPValidationError", "ValidationError"):  # the first refers to the other
            if f'"#/components/schemas/{replaced}"' not in json.dumps(schema):
                components.pop(replaced, None)
        if problem_ref in json.dumps(schema["paths"]) and "Problem" not in components:
            problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(problem.pop("$defs", {}))
            components["Problem"] = problem
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

"""JSON responses the cheap way for the hot routes.

A route that returns a model makes FastAPI validate it again against `response_model`
and encode it; one that returns a `Response` skips both. These routes build their
model once (that is the validation), serialise it with pydantic-core straight to bytes,
and keep `response_model=` on the decorator for the OpenAPI schema.
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response


def json_bytes(content: bytes, status_code: int = 200) -> Response:
    return Response(content, status_code=status_code, media_type="application/json")


def model_response(model: BaseModel, status_code: int = 200) -> Response:
    return json_bytes(model.__pydantic_serializer__.to_json(model), status_code)

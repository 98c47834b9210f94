"""The OpenAPI contract as generated clients and Schemathesis read it (drf-spectacular).

Operations take their description from the method's docstring only (class docstrings are code
notes); input serializers that refuse unknown fields say ``additionalProperties: false``; a
postprocessing hook documents every 4xx with the one ``Error`` body (docs/api.md, "Errors").
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import get_doc

from core.api.rest import MAX_PAGE_SIZE, PAGE_SIZE_HELP, page_size_schema

ERROR_SCHEMA = {
    "type": "object",
    "description": "The body of every 4xx answer.",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, for people."},
        "code": {"type": "string", "description": "What went wrong, for programs (`invalid`, `not_found`, "
                                                  "`throttled`, `conflict`, ...)."},
        "fields": {
            "type": "object",
            "description": "Invalid input: messages per field (nested fields as `pings[0].lat`).",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["detail", "code"],
}

REASONS = {
    400: "Invalid input (`fields` says which).",
    401: "No valid access token (or wrong credentials).",
    403: "Not allowed.",
    404: "Absent, or not visible to you.",
    409: "Conflicts with the current state.",
    413: "Request body too large.",
    415: "Unsupported media type.",
    429: "Too many requests; retry after `Retry-After` seconds.",
}
NO_NUL = r"^[^\x00]*$"
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
_WRITES = ("post", "put", "patch")


class AutoSchema(SpectacularAutoSchema):
    """Descriptions come from the method's docstring or ``extend_schema`` only."""

    def get_description(self) -> str:  # type: ignore[override]
        method = getattr(self.view, getattr(self.view, "action", self.method.lower()), None)
        return get_doc(method)


class StrictFieldsExtension(OpenApiSerializerExtension):
    """``StrictFieldsMixin`` serializers refuse unknown fields: the schema says so."""

    target_class = "core.api.rest.StrictFieldsMixin"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema


def postprocess(result, generator, request, public):
    """SPECTACULAR_SETTINGS' postprocessing hook: the error responses, ``page_size``, and no
    serializer docstrings as component descriptions."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for component in schemas.values():
        component.pop("description", None)
    schemas["Error"] = ERROR_SCHEMA
    for name, component in schemas.items():
        if name.endswith("Request"):  # request bodies (COMPONENT_SPLIT_REQUEST)
            _refuse_nul(component)
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if isinstance(operation, dict) and "responses" in operation:
                if method == "post" and "requestBody" in operation:
                    operation["requestBody"]["required"] = True  # every POST that takes a body needs one
                _document_errors(method, operation)
                _document_page_size(operation)
    return result


def _document_errors(method: str, operation: dict) -> None:
    responses = operation["responses"]
    security = operation.get("security") or []
    authenticated = bool(security) and {} not in security
    takes_input = "requestBody" in operation or method in _WRITES or any(
        parameter.get("in") == "query" for parameter in operation.get("parameters", []))
    statuses = {429}
    if authenticated:
        statuses |= {401, 403, 404}
    if takes_input:
        statuses.add(400)
    if "requestBody" in operation:
        statuses |= {413, 415}
    statuses |= {int(code) for code in responses if str(code).startswith("4")}
    for status in sorted(statuses):
        response: dict = {
            "description": REASONS.get(status, "Client error."),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status == 429:
            response["headers"] = _RETRY_AFTER
        responses[str(status)] = response


def _refuse_nul(component: dict) -> None:
    """Text fields refuse NUL characters (PostgreSQL cannot store them): the schema says so."""
    for prop in component.get("properties", {}).values():
        if prop.get("type") == "string" and not {"format", "enum", "pattern"} & set(prop):
            prop["pattern"] = NO_NUL


def _document_page_size(operation: dict) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query" and parameter.get("name") == "page_size":
            parameter["schema"] = page_size_schema()
            parameter["description"] = PAGE_SIZE_HELP


__all__ = ["MAX_PAGE_SIZE", "AutoSchema", "StrictFieldsExtension", "postprocess"]

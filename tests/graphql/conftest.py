"""Helpers for the GraphQL tests: post a document as a client, read the answer."""

from __future__ import annotations

import json

from config.graphql import PERSISTED_DIR

HOME = (PERSISTED_DIR / "home.graphql").read_text()


def gql(client, query: str | None = None, variables: dict | None = None, *, extensions: dict | None = None,
        operation_name: str | None = None):
    """POST a GraphQL request; returns ``(status, body)``."""
    payload: dict = {}
    if query is not None:
        payload["query"] = query
    if variables is not None:
        payload["variables"] = variables
    if extensions is not None:
        payload["extensions"] = extensions
    if operation_name is not None:
        payload["operationName"] = operation_name
    response = client.post("/graphql/", data=json.dumps(payload), content_type="application/json")
    return response.status_code, json.loads(response.content)


def codes(body: dict) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors") or []]



"""The committed schema.graphql and persisted-query manifest match the code."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from graphql import parse, validate

from config import graphql as gql_config
from config import graphql_export
from devtools import structure


def test_schema_graphql_is_current():
    current = gql_config.SCHEMA_FILE.read_text()
    assert current == gql_config.schema.as_str() + "\n", (
        f"schema.graphql differs from the code's schema: run `{gql_config.EXPORT_COMMAND}` and commit it")


def test_persisted_manifest_is_current_and_every_document_is_valid():
    manifest = json.loads(gql_config.MANIFEST.read_text())
    assert manifest == gql_config.build_manifest(), (
        f"config/graphql_persisted/manifest.json is stale: run `{gql_config.EXPORT_COMMAND}` and commit it")
    assert "home.graphql" in manifest.values()
    for digest, document in gql_config.persisted_documents().items():
        errors = validate(gql_config.schema._schema, parse(document))
        assert errors == [], (manifest[digest], errors)


def test_the_export_command_checks_both_files():
    assert graphql_export.main(["--check"]) == 0


def test_config_reaches_the_apps_only_through_their_graphql_modules():
    into_apps = {imp.target for imp in structure.imports()
                 if imp.source.startswith("config") and imp.target.split(".")[0] in structure.APPS}
    # config/asgi.py mounts the WebSocket routes: realtime's entry point, as api.graphql is the others'.
    assert into_apps and all(target.endswith(".api.graphql") or target in ("accounts.authentication",
                                                                          "realtime.routing")
                             for target in into_apps), into_apps


def test_a_cached_answer_ends_with_its_first_story():
    data = {"feed": [{"stories": [{"expiresAt": "2026-12-02T10:00:00+00:00"}]},
                     {"stories": [{"expiresAt": "2026-12-02T09:00:00+00:00"}, {"expiresAt": None}]}]}
    assert gql_config.first_expiry(data) == datetime(2026, 12, 2, 9, tzinfo=UTC).timestamp()
    assert gql_config.first_expiry({"feed": []}) is None
    assert gql_config.first_expiry(None) is None

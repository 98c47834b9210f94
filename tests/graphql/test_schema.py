"""The committed schema.graphql and persisted-query manifest match the code."""

from __future__ import annotations

import json

from graphql import parse, validate

from config import graphql as gql_config
from config import graphql_export


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

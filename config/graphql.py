"""The GraphQL endpoint (``/graphql/``): the apps' types composed into one schema, with the
REST API's Bearer authentication, user rate limit (weighted by root fields), limits on query
size, a persisted-query allow-list and errors with a stable ``extensions.code``.

Design and the rules it keeps: docs/subsystems/graphql.md; the contract: docs/api.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from pathlib import Path

import strawberry
from cross_web import HTTPException
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from graphql.language import FieldNode, FragmentSpreadNode, InlineFragmentNode, OperationDefinitionNode
from graphql.validation import NoSchemaIntrospectionCustomRule
from rest_framework.exceptions import AuthenticationFailed
from strawberry.django.views import GraphQLView
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.tools import merge_types

from accounts.api.graphql import AccountsMutation, AccountsQuery
from accounts.authentication import AccessTokenAuthentication
from connections.api.graphql import ConnectionsMutation, ConnectionsQuery
from core.api import graphql as gql
from core.api.rest import dumps
from core.api.throttling import UserRateThrottle
from core.cache.client import redis_client
from crossings.api.graphql import CrossingsQuery
from stories.api.graphql import StoriesMutation, StoriesQuery

logger = logging.getLogger(__name__)

PERSISTED_DIR = Path(__file__).resolve().parent / "graphql_persisted"
MANIFEST = PERSISTED_DIR / "manifest.json"
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema.graphql"
EXPORT_COMMAND = "python -m config.graphql_export"


# ----------------------------------------------------------------------------- limits


class IntrospectionWhenEnabled(NoSchemaIntrospectionCustomRule):
    """Introspection (``__schema``, ``__type``) only while GRAPHQL_INTROSPECTION is on (dev)."""

    def enter_field(self, node, *args):
        if not settings.GRAPHQL_INTROSPECTION:
            super().enter_field(node, *args)


def root_field_count(document, operation_name: str | None) -> int:
    """Root fields of the operation that runs (fragments at the root expanded): its rate-limit weight."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    operation = next((op for op in operations if op.name and op.name.value == operation_name), None) \
        if operation_name else (operations[0] if operations else None)
    if operation is None:
        return 1
    fragments = {d.name.value: d for d in document.definitions if hasattr(d, "type_condition")
                 and not isinstance(d, InlineFragmentNode)}

    def count(selection_set, seen: frozenset) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += selection.name.value != "__typename"
            elif isinstance(selection, InlineFragmentNode):
                total += count(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    total += count(fragment.selection_set, seen | {selection.name.value})
        return total

    return max(1, count(operation.selection_set, frozenset()))


def weighted_hit(throttle: UserRateThrottle, key: str, weight: int) -> int:
    """Count ``weight`` hits on the user's REST rate-limit counter (same key, same window)."""
    redis_key, ttl = throttle.counter(key)
    pipe = redis_client().pipeline(transaction=False)
    pipe.incrby(redis_key, weight)
    pipe.expire(redis_key, ttl)
    return int(pipe.execute()[0])


class UserRateLimit(SchemaExtension):
    """The REST user limit (RATE_LIMIT_USER), each root field counting as one request."""

    def on_execute(self):
        context = self.execution_context
        user = getattr(context.context.request, "user", None)
        if settings.RATE_LIMIT_ENABLED and user is not None and user.is_authenticated:
            throttle = UserRateThrottle()
            if throttle.rate is not None:
                weight = root_field_count(context.graphql_document, context.operation_name)
                try:
                    count = weighted_hit(throttle, str(user.pk), weight)
                except Exception:
                    logger.warning("rate limiter unavailable; allowing the request", exc_info=True)
                    count = 0
                if count > throttle.num_requests:
                    wait = throttle.duration - (time.time() % throttle.duration)
                    context.context.response.status_code = 429
                    context.context.response["Retry-After"] = str(max(1, int(wait + 0.999)))
                    context.result = GraphQLExecutionResult(data=None, errors=[GraphQLError(
                        "Too many requests.", original_error=gql.CodedError(
                            f"Too many requests: retry in {int(wait + 0.999)} s.", "RATE_LIMITED"))])
        yield


# ----------------------------------------------------------------------------- schema


class Schema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None) -> None:
        """Log unexpected errors only (with their traceback); the client sees them masked."""
        for error in errors:
            original = error.original_error
            if original is not None and not isinstance(original, GraphQLError) and gql.describe(original) is None:
                logger.error("GraphQL resolver failed: %s", error.message, exc_info=original)


Query = merge_types("Query", (AccountsQuery, CrossingsQuery, ConnectionsQuery, StoriesQuery))
Mutation = merge_types("Mutation", (AccountsMutation, ConnectionsMutation, StoriesMutation))

schema = Schema(
    query=Query,
    mutation=Mutation,
    extensions=[
        lambda: ParserCache(maxsize=256),
        lambda: AddValidationRules([IntrospectionWhenEnabled]),
        lambda: QueryDepthLimiter(max_depth=settings.GRAPHQL_MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=settings.GRAPHQL_MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=settings.GRAPHQL_MAX_TOKENS),
        UserRateLimit,
    ],
)


# ---------------------------------------------------------------------- persisted queries


def document_hash(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def build_manifest() -> dict[str, str]:
    """``{sha256 of the document: file name}`` of config/graphql_persisted/*.graphql."""
    return {document_hash(path.read_text()): path.name for path in sorted(PERSISTED_DIR.glob("*.graphql"))}


@functools.cache
def persisted_documents() -> dict[str, str]:
    """The shipped allow-list: ``{sha256: document}`` from the manifest."""
    manifest = json.loads(MANIFEST.read_text())
    return {digest: (PERSISTED_DIR / name).read_text() for digest, name in manifest.items()}


class RequestRefused(Exception):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.code = status, code


def resolve_persisted(data):
    """Fill the document of an ``extensions.persistedQuery.sha256Hash`` request, and refuse
    documents outside the allow-list when GRAPHQL_PERSISTED_ONLY is on."""
    persisted = (data.extensions or {}).get("persistedQuery")
    digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if digest is not None and not isinstance(digest, str):
        raise RequestRefused(400, "persistedQuery.sha256Hash must be a string.", "BAD_USER_INPUT")
    if data.query is None:
        if digest is None:
            raise RequestRefused(400, "No GraphQL query found in the request.", "BAD_USER_INPUT")
        document = persisted_documents().get(digest)
        if document is None:
            raise RequestRefused(400, "Unknown persisted query.", "PERSISTED_QUERY_NOT_FOUND")
        data.query = document
        return data
    if digest is not None and digest != document_hash(data.query):
        raise RequestRefused(400, "persistedQuery.sha256Hash does not match the query.", "BAD_USER_INPUT")
    if settings.GRAPHQL_PERSISTED_ONLY and document_hash(data.query) not in persisted_documents():
        raise RequestRefused(400, "Only persisted queries are accepted here: send "
                                  "extensions.persistedQuery.sha256Hash (docs/api.md).", "FORBIDDEN")
    return data


# ------------------------------------------------------------------------------- view


def error_out(error: GraphQLError) -> dict:
    """An error in GraphQL's shape with a stable ``extensions.code``; unexpected ones masked."""
    out: dict = dict(error.formatted)
    original = error.original_error
    if original is None or isinstance(original, (GraphQLError, StrawberryGraphQLError)):
        # Parse, validation, limits and variable coercion: something the client sent.
        out["extensions"] = {"code": "BAD_USER_INPUT"}
        return out
    described = gql.describe(original)
    if described is None:
        out["message"] = "Unexpected error."
        out["extensions"] = {"code": "INTERNAL_SERVER_ERROR"}
        return out
    code, message, details = described
    out["message"] = message
    out["extensions"] = {"code": code, **({"details": details} if details else {})}
    return out


def _error_response(status: int, message: str, code: str, **headers) -> HttpResponse:
    response = HttpResponse(dumps({"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}),
                            status=status, content_type="application/json")
    for name, value in headers.items():
        response[name] = value
    return response


class CrossingsGraphQLView(GraphQLView):
    schema = schema
    allow_queries_via_get = True

    def parse_http_body(self, request):
        data = super().parse_http_body(request)
        return [resolve_persisted(item) for item in data] if isinstance(data, list) else resolve_persisted(data)

    def process_result(self, request, result):
        out: dict = {"data": result.data}
        if result.errors:
            out["errors"] = [error_out(error) for error in result.errors]
        return out

    def encode_json(self, data) -> bytes:
        return dumps(data)

    def dispatch(self, request, *args, **kwargs):
        self.graphql_ide = "graphiql" if settings.GRAPHQL_IDE else None
        try:
            auth = AccessTokenAuthentication().authenticate(request)
        except AuthenticationFailed as exc:
            return _error_response(401, str(exc.detail), "UNAUTHENTICATED", **{"WWW-Authenticate": "Bearer"})
        request.user = auth[0] if auth else AnonymousUser()
        try:
            return self.run(request=request)
        except RequestRefused as exc:
            return _error_response(exc.status, str(exc), exc.code)
        except HTTPException as exc:
            return _error_response(exc.status_code, exc.reason,
                                   "NOT_FOUND" if exc.status_code == 404 else "BAD_USER_INPUT")


graphql_view = csrf_exempt(CrossingsGraphQLView.as_view(schema=schema))

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
from datetime import datetime
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
    ValidationCache,
)
from strawberry.tools import merge_types

from accounts.api.graphql import AccountsMutation, AccountsQuery
from accounts.authentication import AccessTokenAuthentication
from connections.api.graphql import ConnectionsMutation, ConnectionsQuery
from core.api import graphql as gql
from core.api.rest import dumps
from core.api.throttling import UserRateThrottle
from core.cache import response as response_cache
from core.cache.client import redis_client
from crossings.api.graphql import CrossingsQuery
from stories.api.graphql import StoriesMutation, StoriesQuery

logger = logging.getLogger(__name__)

PERSISTED_DIR = Path(__file__).resolve().parent / "graphql_persisted"
MANIFEST = PERSISTED_DIR / "manifest.json"
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "schema.graphql"
EXPORT_COMMAND = "python -m config.graphql_export"


# ----------------------------------------------------------------------------- limits


# The limiters' rules are built once: a fresh class per request would defeat the validation cache.
_LIMIT_RULES = (*QueryDepthLimiter(max_depth=settings.GRAPHQL_MAX_DEPTH).validation_rules,
                *MaxAliasesLimiter(max_alias_count=settings.GRAPHQL_MAX_ALIASES).validation_rules)


def validation_rules() -> AddValidationRules:
    """The limits, and no introspection (``__schema``, ``__type``) unless GRAPHQL_INTROSPECTION is
    on (dev).  Read per request; the rules are part of the validation cache's key."""
    extra = () if settings.GRAPHQL_INTROSPECTION else (NoSchemaIntrospectionCustomRule,)
    return AddValidationRules([*_LIMIT_RULES, *extra])


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
                key = str(user.pk)
                # A persisted GET was already counted once by the response cache's lookup.
                counted = (getattr(context.context.request, "rate_counted", None) or {}).get((throttle.scope, key))
                try:
                    if counted is not None:
                        count = weighted_hit(throttle, key, weight - 1) if weight > 1 else int(counted)
                    else:
                        count = weighted_hit(throttle, key, weight)
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
        lambda: MaxTokensLimiter(max_token_count=settings.GRAPHQL_MAX_TOKENS),
        lambda: ParserCache(maxsize=256),
        validation_rules,
        lambda: ValidationCache(maxsize=256),  # after the rules: it validates with them
        UserRateLimit,
    ],
)


# ---------------------------------------------------------------------- persisted queries


def document_hash(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def build_manifest() -> dict[str, str]:
    """``{sha256 of the document: file name}`` of config/graphql_persisted/*.graphql."""
    return {document_hash(path.read_text()): path.name for path in sorted(PERSISTED_DIR.glob("*.graphql"))}


# Persisted documents made only of reads that the REST response cache also stores (the first
# crossings page, connections, the feed) and ``me`` (its profile version moves with every change
# of the account): fetched with GET, their whole answer is cached like those REST responses.
RESPONSE_CACHED = frozenset({"home.graphql"})


@functools.cache
def persisted_manifest() -> dict[str, str]:
    """The shipped allow-list: ``{sha256: file name}``."""
    return json.loads(MANIFEST.read_text())


@functools.cache
def persisted_documents() -> dict[str, str]:
    """The shipped allow-list: ``{sha256: document}``."""
    return {digest: (PERSISTED_DIR / name).read_text() for digest, name in persisted_manifest().items()}


class RequestRefused(Exception):
    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.code = status, code


def resolve_persisted(data):
    """Fill the document of an ``extensions.persistedQuery.sha256Hash`` request, and refuse
    documents outside the allow-list when GRAPHQL_PERSISTED_ONLY is on.  Returns the data and
    the persisted file's name when the document was given by its hash."""
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
        return data, persisted_manifest()[digest]
    if digest is not None and digest != document_hash(data.query):
        raise RequestRefused(400, "persistedQuery.sha256Hash does not match the query.", "BAD_USER_INPUT")
    if settings.GRAPHQL_PERSISTED_ONLY and document_hash(data.query) not in persisted_documents():
        raise RequestRefused(400, "Only persisted queries are accepted here: send "
                                  "extensions.persistedQuery.sha256Hash (docs/api.md).", "FORBIDDEN")
    return data, None


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


def first_expiry(data) -> float | None:
    """The first ``expiresAt`` of a story in an answer (a cached answer ends then)."""
    times = [story["expiresAt"] for group in (data or {}).get("feed") or () for story in group["stories"]
             if story.get("expiresAt")]
    return min((datetime.fromisoformat(value).timestamp() for value in times), default=None)


class CrossingsGraphQLView(GraphQLView):
    schema = schema
    allow_queries_via_get = True
    # core.cache.response: persisted GETs of RESPONSE_CACHED documents are stored and replayed
    # (the middleware authenticates with get_authenticators and counts the user's rate limit).
    response_cache = True
    throttle_classes = (UserRateThrottle,)
    persisted_name: str | None = None

    def __init__(self, **kwargs):
        kwargs.setdefault("schema", schema)
        super().__init__(**kwargs)

    def get_authenticators(self):
        return [AccessTokenAuthentication()]

    def should_render_graphql_ide(self, request) -> bool:
        # A GET that names an operation (by document or by hash) runs it, whatever it accepts.
        params = request.query_params
        return super().should_render_graphql_ide(request) and params.get("extensions") is None

    def parse_http_body(self, request):
        data = super().parse_http_body(request)
        if isinstance(data, list):
            return [resolve_persisted(item)[0] for item in data]
        data, self.persisted_name = resolve_persisted(data)
        return data

    def process_result(self, request, result):
        out: dict = {"data": result.data}
        if result.errors:
            out["errors"] = [error_out(error) for error in result.errors]
        elif request.method == "GET" and self.persisted_name in RESPONSE_CACHED:
            response_cache.cacheable(request, until=first_expiry(result.data))
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


graphql_view = csrf_exempt(CrossingsGraphQLView.as_view())

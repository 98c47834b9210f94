"""The served OpenAPI schema against the live app with Schemathesis, as its command line runs it
(examples, coverage, fuzzing and, when links exist, stateful phases): every operation, positive
and negative data, every check, authenticated with a real token.

Bounded: MAX_EXAMPLES per operation and phase, no example database or cache.  (A ``max-time`` would not
bound the run: with one set, Schemathesis goes on fuzzing until it is reached.)
"""

from __future__ import annotations

import pytest
import schemathesis
from django.db import connections
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, StopReason, events
from schemathesis.engine import from_schema as engine_for

from tests.contract.conftest import bearer_for
from tests.factories import make_user

MAX_EXAMPLES = 20
REQUEST_TIMEOUT_S = 60  # a guard against a hang, far above any answer's time

# Operations whose inputs follow rules that a JSON Schema cannot state, so that some
# schema-valid bodies are rightly refused with a 400: a real phone number and a strong password,
# the code that was sent, an image that decodes, a ping recorded within the retention window,
# text or media but not both, and nothing aimed at oneself (block, connect, report); an upload
# whose bytes are no image or video is a 415.
SEMANTIC_400 = [
    "auth_register_create", "auth_register_verify_create", "auth_login_create", "auth_phone_verify_create",
    "me_partial_update",
    "blocks_create", "connections_create", "locations_create", "stories_create", "reports_create",
    "stories_report_create",
]
ACCEPTED = ["2xx", "400", "401", "403", "404", "409", "413", "415", "429"]

# These end the session or the account they are called with: each call gets a user of its own.
SELF_ENDING = {"POST /api/v1/auth/logout/", "DELETE /api/v1/me/"}


def config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "request-timeout": REQUEST_TIMEOUT_S,
        "cache": {"enabled": False},  # every run starts afresh and leaves nothing behind
        "checks": {"enabled": True},
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        "operations": [{
            "include-operation-id": SEMANTIC_400,
            "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
        }, {
            # A multipart body can only carry an object's fields: a body of another type is sent
            # as bytes without parts, which the server reads (as RFC 2046 says) as an empty form,
            # and an empty PATCH is a valid one.  tests/accounts/test_profile.py covers bad input.
            "include-operation-id": "me_partial_update",
            "checks": {"negative_data_rejection": {"enabled": False}},
        }],
    })


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.slow
def test_every_operation_honours_the_schema(live_api, staff_headers):
    schema = schemathesis.openapi.from_url(f"{live_api}/api/schema/", config=config())

    @schema.auth(refresh_interval=None)
    class Tokens:
        def get(self, case, ctx):
            if case.operation.label in SELF_ENDING:
                token = bearer_for(make_user())["Authorization"]
                connections.close_all()  # this thread's: a connection left open blocks dropping the test database
                return token
            return staff_headers["Authorization"]

        def set(self, case, data, ctx):
            case.headers = {**(case.headers or {}), "Authorization": data}

    tested: set[str] = set()
    failures: list[str] = []
    finished = None
    for event in engine_for(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            tested.add(event.label)
            for checks in event.recorder.checks.values():
                failures += [f"{check.failure_info.failure.operation}: {check.failure_info.failure.title}\n"
                             f"{check.failure_info.failure.message}\n{check.failure_info.code_sample}"
                             for check in checks if check.failure_info is not None]
                failures += [f"{event.label}: check {check.name} crashed"
                             for check in checks if check.status == Status.ERROR]
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.append(f"error: {event}")
        elif isinstance(event, events.EngineFinished):
            finished = event

    assert not failures, "\n\n".join(failures)
    assert finished is not None and finished.stop_reason == StopReason.COMPLETED
    operations = {result.ok().label for result in schema.get_all_operations()}
    assert operations - tested == set()

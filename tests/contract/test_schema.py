"""The OpenAPI schema's promises to generated clients, and the one error body behind them."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.conftest import client_for
from tests.factories import make_connection, make_user

pytestmark = pytest.mark.django_db

UPLOADS = {("post", "/api/v1/stories/"), ("patch", "/api/v1/me/")}
LISTS = ["/api/v1/connections/", "/api/v1/blocks/", "/api/v1/locations/", "/api/v1/auth/sessions/",
         "/api/v1/crossings/"]


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_one_content_type_per_body_multipart_only_for_uploads(schema):
    for method, path, operation in _operations(schema):
        if "requestBody" in operation:
            expected = "multipart/form-data" if (method, path) in UPLOADS else "application/json"
            assert list(operation["requestBody"]["content"]) == [expected], (method, path)


def test_every_operation_documents_its_errors_with_the_one_error_body(schema):
    error = {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail", "code"]
    for method, path, operation in _operations(schema):
        responses = operation["responses"]
        expected = {"429"}
        if operation.get("security") and {} not in operation["security"]:
            expected |= {"401", "403", "404"}
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        assert expected <= set(responses), (method, path)
        for status, response in responses.items():
            if status.startswith("4"):
                assert response["content"]["application/json"]["schema"] == error, (method, path, status)
    assert "Retry-After" in schema["paths"]["/api/v1/me/"]["get"]["responses"]["429"]["headers"]
    assert "409" in schema["paths"]["/api/v1/connections/"]["post"]["responses"]


def test_strict_bodies_refuse_additional_properties(schema):
    components = schema["components"]["schemas"]
    for name in ("LoginRequest", "PingBatchRequest", "PingInRequest", "MessageInRequest", "StoryInRequest",
                 "UserReportInRequest", "StoryReportTargetInRequest", "PatchedMeUpdateRequest"):
        assert components[name]["additionalProperties"] is False, name


def test_reports_are_one_of_a_user_report_or_a_story_report_each_with_its_reasons(schema):
    components = schema["components"]["schemas"]
    body = schema["paths"]["/api/v1/reports/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    refs = [option["$ref"].rsplit("/", 1)[1] for option in components[body["$ref"].rsplit("/", 1)[1]]["oneOf"]]
    assert refs == ["UserReportInRequest", "StoryReportTargetInRequest"]
    assert sorted(components["UserReportInRequest"]["required"]) == ["reason", "user_id"]
    assert sorted(components["StoryReportTargetInRequest"]["required"]) == ["reason", "story_id"]
    assert "impersonation" in components["UserReportReasonEnum"]["enum"]
    assert "impersonation" not in components["StoryReportReasonEnum"]["enum"]


def test_lists_are_named_as_lists_and_page_size_is_bounded(schema):
    ids = {operation["operationId"] for _, _, operation in _operations(schema)}
    assert {"connections_list", "connections_messages_list", "crossings_list", "blocks_list", "locations_list",
            "stories_feed_list", "stories_close_friends_list"} <= ids
    assert not [i for i in ids if i.startswith(("connections_retrieve", "connections_messages_retrieve"))]
    for method, path, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "page_size":
                assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, path


def test_every_answer_with_a_body_documents_it(schema):
    report = schema["paths"]["/api/v1/stories/{story_id}/report/"]["post"]["responses"]["201"]
    assert report["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/StoryReportOut"}
    code = schema["paths"]["/api/v1/auth/phone/code/"]["post"]["responses"]["202"]
    assert code["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PhoneCodeSent"}


def test_no_code_comment_becomes_a_description(schema):
    for name, component in schema["components"]["schemas"].items():
        if name != "Error":
            assert "description" not in component, name
    refresh = schema["paths"]["/api/v1/auth/refresh/"]["post"]
    assert "description" not in refresh  # its class docstring is a note for maintainers
    assert schema["paths"]["/api/v1/connections/"]["post"]["description"].startswith("Request a connection")


@pytest.mark.parametrize("url", [*LISTS, "messages"])
@pytest.mark.parametrize("value", ["0", "-1", "abc", "101", "", "null", "1.5"])
def test_page_size_is_validated_alike_everywhere(url, value):
    me = make_user()
    if url == "messages":
        url = f"/api/v1/connections/{make_connection(me, make_user()).pk}/messages/"
    response = client_for(me).get(url, {"page_size": value})
    assert response.status_code == 400, response.content
    assert response.json() == {"detail": "page_size: Must be an integer between 1 and 100.", "code": "invalid",
                               "fields": {"page_size": ["Must be an integer between 1 and 100."]}}


@pytest.mark.parametrize("url", [*LISTS, "messages"])
def test_page_size_in_range_is_honoured(url):
    me = make_user()
    if url == "messages":
        url = f"/api/v1/connections/{make_connection(me, make_user()).pk}/messages/"
    assert client_for(me).get(url, {"page_size": "100"}).status_code == 200


def test_error_bodies_share_one_shape():
    client = client_for(make_user())
    unknown = client.post("/api/v1/blocks/", {"user_id": "x", "extra": 1}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "invalid"
    assert unknown.json()["fields"]["extra"] == ["Unknown field."]
    assert "extra: Unknown field." in unknown.json()["detail"]
    missing = client.get("/api/v1/users/00000000-0000-0000-0000-000000000000/")
    assert missing.json() == {"detail": "No such user.", "code": "not_found"}
    anonymous = APIClient().get("/api/v1/me/")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    multipart = client.post("/api/v1/blocks/", {"user_id": "x"}, format="multipart")
    assert multipart.status_code == 415 and multipart.json()["code"] == "unsupported_media_type"
    malformed = client.post("/api/v1/blocks/", b"{not json", content_type="application/json")
    assert malformed.status_code == 400 and set(malformed.json()) == {"detail", "code"}


def test_throttled_answers_carry_retry_after_and_the_error_body(settings):
    rest = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "1/hour"}}
    settings.REST_FRAMEWORK = rest
    client = client_for(make_user())
    assert client.get("/api/v1/me/").status_code == 200
    throttled = client.get("/api/v1/me/")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) >= 1
    assert throttled.json()["code"] == "throttled" and throttled.json()["detail"].startswith("Request was throttled")

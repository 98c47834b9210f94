"""Accounts under moderation: erasure keeps reports, deactivated users cannot erase or contact
anyone, shadow-banned users' sends look delivered but reach nobody, and blocks answer with ids."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from accounts import services
from accounts.models import Block, User
from connections import services as connection_services
from connections.models import Connection, Message
from tests.conftest import client_for
from tests.factories import make_connection, make_crossing, make_user

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")  # on-commit invalidations run

CONNECTIONS = "/api/v1/connections/"


def _messages(conn) -> str:
    return f"/api/v1/connections/{conn.pk}/messages/"


# ------------------------------------------------------------------------ erasure


def test_a_deactivated_user_cannot_erase_their_account():
    user = make_user()
    client = client_for(user)
    # Deactivated without the service (its revocation markers would refuse the token first):
    # the erasure itself must still refuse.
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = client.delete("/api/v1/me/")
    assert response.status_code == 403
    assert "deactivated" in response.json()["detail"]
    assert User.objects.filter(pk=user.pk).exists()
    with pytest.raises(services.AccountDeactivated):
        services.erase_own_account(user.pk)


def test_a_deactivated_user_is_refused_before_reaching_erasure():
    user = make_user()
    client = client_for(user)
    services.deactivate_user(user.pk)
    assert client.delete("/api/v1/me/").status_code == 401
    assert User.objects.filter(pk=user.pk).exists()


def test_reports_and_their_outcome_survive_erasure_anonymised():
    reporter, reported, staff = make_user(), make_user(), make_user(is_staff=True)
    report, _ = services.report_user(reporter_id=reporter.pk, reported_id=reported.pk, reason="abuse",
                                     details="threatening messages")
    services.close_reports([report.pk], staff_user_id=staff.pk, status="resolved")
    services.deactivate_user(reported.pk)
    services.erase_user(reported.pk)  # staff may erase a deactivated account
    services.erase_user(reporter.pk)
    report.refresh_from_db()
    assert (report.reported_id, report.reporter_id) == (None, None)
    assert (report.details, report.reason, report.status, report.resolved_by_id) == (
        "threatening messages", "abuse", "resolved", staff.pk)
    assert str(report)  # the admin lists it


# ----------------------------------------------------------------------- contact


@pytest.fixture
def pair():
    a, b = make_user(), make_user()
    make_crossing(a, b)
    return a, b


def test_a_deactivated_user_cannot_send_requests_or_messages(pair):
    a, b = pair
    conn = make_connection(a, b)
    User.objects.filter(pk=a.pk).update(is_active=False)
    services.profile_changed(a.pk)
    with pytest.raises(PermissionDenied):
        connection_services.send_message(user_id=a.pk, connection_id=conn.pk, body="hi")
    c = make_user()
    make_crossing(a, c)
    with pytest.raises(PermissionDenied):
        connection_services.request_connection(requester_id=a.pk, target_id=c.pk)
    assert not Message.objects.exists()
    assert not Connection.objects.filter(requester_id=a.pk, user_low_id__in=[a.pk, c.pk],
                                         user_high_id__in=[a.pk, c.pk]).exclude(pk=conn.pk).exists()


def test_over_http_a_deactivated_sender_gets_a_403(pair):
    a, b = pair
    conn = make_connection(a, b)
    client = client_for(a)
    User.objects.filter(pk=a.pk).update(is_active=False)  # tokens still pass: the send rule decides
    services.profile_changed(a.pk)
    response = client.post(_messages(conn), {"body": "hi"}, format="json")
    assert response.status_code == 403
    assert "deactivated" in response.json()["detail"]
    c = make_user()
    make_crossing(a, c)
    response = client.post(CONNECTIONS, {"user_id": str(c.pk)}, format="json")
    assert response.status_code == 403


def test_a_shadow_banned_request_looks_sent_and_reaches_nobody(pair):
    a, b = pair
    services.set_shadow_ban([a.pk], True)
    ca, cb = client_for(a), client_for(b)
    response = ca.post(CONNECTIONS, {"user_id": str(b.pk)}, format="json")
    assert response.status_code == 201
    normal_keys = set(response.json())
    assert response.json()["status"] == "pending" and response.json()["direction"] == "outgoing"
    assert not Connection.objects.exists()
    assert cb.get(CONNECTIONS + "?status=incoming").json()["results"] == []
    # The same shape as a real request.
    c, d = make_user(), make_user()
    make_crossing(c, d)
    assert set(client_for(c).post(CONNECTIONS, {"user_id": str(d.pk)}, format="json").json()) == normal_keys


def test_a_shadow_banned_message_looks_sent_and_is_stored_nowhere(pair):
    a, b = pair
    conn = make_connection(a, b)
    ca, cb = client_for(a), client_for(b)
    assert ca.post(_messages(conn), {"body": "before"}, format="json").status_code == 201
    services.set_shadow_ban([a.pk], True)
    response = ca.post(_messages(conn), {"body": "after"}, format="json")
    assert response.status_code == 201
    assert set(response.json()) == {"id", "sender_id", "body", "created_at"}
    assert response.json()["body"] == "after"
    assert [m["body"] for m in cb.get(_messages(conn)).json()["results"]] == ["before"]
    assert list(Message.objects.values_list("body", flat=True)) == ["before"]


# ------------------------------------------------------------------------ blocks


def test_blocks_answer_with_ids_and_times_only(user, other_user):
    client = client_for(user)
    response = client.post("/api/v1/blocks/", {"user_id": str(other_user.pk)}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"user_id", "created_at"}
    assert body["user_id"] == str(other_user.pk)
    listed = client.get("/api/v1/blocks/").json()["results"]
    assert [set(item) for item in listed] == [{"user_id", "created_at"}]
    assert listed[0]["user_id"] == str(other_user.pk)
    assert Block.objects.count() == 1
    again = client.post("/api/v1/blocks/", {"user_id": str(other_user.pk)}, format="json")
    assert again.status_code == 200 and set(again.json()) == {"user_id", "created_at"}
    assert other_user.display_name not in response.content.decode()

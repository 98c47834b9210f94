"""The staff admin: finding users fast, moderation actions, sessions, blocks and reports queue."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.admin import EstimatedCountPaginator
from accounts.models import Block, ReportStatus, Session, User, UserReport
from accounts.services import open_session
from tests.factories import make_user

pytestmark = pytest.mark.django_db

USERS = reverse("admin:accounts_user_changelist")


def _action(admin_client, url, action, ids):
    return admin_client.post(url, {"action": action, "_selected_action": [str(pk) for pk in ids]}, follow=True)


def test_user_changelist_loads_without_counting_the_table(admin_client, user):
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(USERS)
    assert response.status_code == 200
    assert b"Alice" in response.content
    full_counts = [q["sql"] for q in queries.captured_queries
                   if "COUNT(*)" in q["sql"].upper() and '"users"' in q["sql"] and "LIMIT" not in q["sql"].upper()]
    assert full_counts == []


def test_search_by_phone_in_any_format(admin_client, user, other_user):
    national = f"+1 ({user.phone[2:5]}) {user.phone[5:8]}-{user.phone[8:]}"
    response = admin_client.get(USERS, {"q": national})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [user]


def test_search_by_display_name_prefix(admin_client, user, other_user):
    make_user(display_name="alina")
    response = admin_client.get(USERS, {"q": "ali"})
    names = sorted(u.display_name for u in response.context["cl"].result_list)
    assert names == ["Alice", "alina"]
    assert list(admin_client.get(USERS, {"q": "lice"}).context["cl"].result_list) == []
    assert admin_client.get(USERS, {"q": "+999"}).status_code == 200  # not a phone: a name prefix


def test_name_search_uses_the_expression_index(user):
    from django.db.models.functions import Upper

    queryset = User.objects.alias(name_upper=Upper("display_name")).filter(name_upper__startswith="ALI")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.explain()
    assert "idx_users_display_name_upper" in plan


def test_estimated_count_paginator(user, other_user):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE users")
    unfiltered = EstimatedCountPaginator(User.objects.order_by("-created_at"), 50)
    assert unfiltered.count >= 2
    filtered = EstimatedCountPaginator(User.objects.filter(display_name="Bob").order_by("pk"), 50)
    assert filtered.count == 1
    EstimatedCountPaginator.COUNT_LIMIT, old = 1, EstimatedCountPaginator.COUNT_LIMIT
    try:
        capped = EstimatedCountPaginator(User.objects.filter(is_active=True).order_by("pk"), 50)
        assert capped.count == 2  # at most COUNT_LIMIT + 1 rows counted
    finally:
        EstimatedCountPaginator.COUNT_LIMIT = old


def test_user_actions(admin_client, user, other_user, commit_hooks):
    open_session(other_user)
    with commit_hooks():
        _action(admin_client, USERS, "verify", [user.pk])
        _action(admin_client, USERS, "shadow_ban", [user.pk, other_user.pk])
    user.refresh_from_db()
    assert user.is_verified and user.is_shadow_banned
    _action(admin_client, USERS, "lift_shadow_ban", [other_user.pk])
    assert not User.objects.get(pk=other_user.pk).is_shadow_banned
    response = _action(admin_client, USERS, "revoke_sessions", [other_user.pk])
    assert response.status_code == 200
    assert not Session.objects.filter(user=other_user, revoked_at__isnull=True).exists()
    open_session(other_user)
    _action(admin_client, USERS, "deactivate", [other_user.pk])
    other_user.refresh_from_db()
    assert not other_user.is_active
    assert not Session.objects.filter(user=other_user, revoked_at__isnull=True).exists()


def test_add_and_change_user_with_phone_as_username(admin_client):
    add = reverse("admin:accounts_user_add")
    assert admin_client.get(add).status_code == 200
    response = admin_client.post(add, {"phone": "+1 202 555 0177", "display_name": "Dan",
                                       "password1": "a-long-passphrase", "password2": "a-long-passphrase"})
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    dan = User.objects.get(phone="+12025550177")
    assert dan.check_password("a-long-passphrase")
    duplicate = admin_client.post(add, {"phone": "+12025550177", "display_name": "Dan2",
                                        "password1": "a-long-passphrase", "password2": "a-long-passphrase"})
    assert duplicate.status_code == 200 and User.objects.filter(phone="+12025550177").count() == 1
    change = reverse("admin:accounts_user_change", args=[dan.pk])
    assert admin_client.get(change).status_code == 200
    assert admin_client.get(reverse("admin:auth_user_password_change", args=[dan.pk])).status_code == 200


def test_deactivating_in_the_change_form_revokes_sessions(admin_client, user):
    open_session(user)
    change = reverse("admin:accounts_user_change", args=[user.pk])
    form = admin_client.get(change).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update({"is_active": "", "phone": user.phone, "trust_level": user.trust_level,
                 "created_at_0": "", "groups": [], "user_permissions": []})
    data = {k: v for k, v in data.items() if k not in ("is_active", "password", "id", "created_at",
                                                       "last_login", "last_active_at", "avatar")}
    response = admin_client.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert not user.is_active
    assert not Session.objects.filter(user=user, revoked_at__isnull=True).exists()


def test_deleting_a_user_in_the_admin_erases_it(admin_client, user):
    delete = reverse("admin:accounts_user_delete", args=[user.pk])
    assert admin_client.get(delete).status_code == 200
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not User.objects.filter(pk=user.pk).exists()


def test_sessions_and_blocks_admin(admin_client, user, other_user):
    session, _, _ = open_session(user, user_agent="Pixel 9", ip="10.1.2.3")
    sessions = reverse("admin:accounts_session_changelist")
    response = admin_client.get(sessions)
    assert response.status_code == 200 and b"Pixel 9" in response.content
    assert b"refresh_token_hash" not in admin_client.get(
        reverse("admin:accounts_session_change", args=[session.pk])).content
    assert list(admin_client.get(sessions, {"q": str(user.pk)}).context["cl"].result_list) == [session]
    assert list(admin_client.get(sessions, {"q": "garbage"}).context["cl"].result_list) == []
    _action(admin_client, sessions, "revoke", [session.pk])
    session.refresh_from_db()
    assert session.revoked_at is not None

    block = Block.objects.create(blocker=user, blocked=other_user)
    blocks = reverse("admin:accounts_block_changelist")
    assert admin_client.get(blocks).status_code == 200
    _action(admin_client, blocks, "delete_selected", [block.pk])
    admin_client.post(blocks, {"action": "delete_selected", "_selected_action": [block.pk], "post": "yes"})
    assert not Block.objects.exists()


def test_reports_queue_open_first_and_actions(admin_client, staff_user, user, other_user):
    third = make_user()
    closed = UserReport.objects.create(reporter=user, reported=third, reason="spam",
                                       status=ReportStatus.DISMISSED)
    first = UserReport.objects.create(reporter=user, reported=other_user, reason="abuse", details="d" * 100)
    second = UserReport.objects.create(reporter=third, reported=other_user, reason="spam")
    queue = reverse("admin:accounts_userreport_changelist")
    response = admin_client.get(queue)
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [first, second, closed]
    _action(admin_client, queue, "resolve", [first.pk])
    _action(admin_client, queue, "dismiss", [second.pk, closed.pk])
    first.refresh_from_db()
    second.refresh_from_db()
    closed.refresh_from_db()
    assert (first.status, first.resolved_by_id) == (ReportStatus.RESOLVED, staff_user.pk)
    assert second.status == ReportStatus.DISMISSED and second.resolved_at is not None
    assert closed.resolved_by_id is None  # already closed: untouched
    _action(admin_client, queue, "shadow_ban_reported", [first.pk])
    assert User.objects.get(pk=other_user.pk).is_shadow_banned
    _action(admin_client, queue, "deactivate_reported", [first.pk])
    assert not User.objects.get(pk=other_user.pk).is_active
    assert admin_client.get(reverse("admin:accounts_userreport_change", args=[first.pk])).status_code == 200


def test_admin_is_for_staff_only(client, user):
    assert client.get(USERS).status_code == 302
    client.force_login(user)
    assert client.get(USERS).status_code == 302

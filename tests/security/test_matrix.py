# ruff: noqa: E501  (the table below is one row per line, aligned by actor)
"""Who may do what: every route of /api/v1/ x method x actor, with the expected status in one
table (MATRIX).  The routes come from the URL conf, so a new route without a row fails here.
Sign-up is two steps (202, then a code that creates the account): a wrong code is a 400.

The objects a route names belong to the owner (her session, her crossing and connection with
``crossed``, her story, the user she blocked...).  The world is built once per module; every
cell runs in its own rolled-back transaction with an empty cache.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import revocation
from accounts import services as account_services
from accounts.models import User
from connections.models import Message
from stories import services as story_services
from tests.factories import (
    DEFAULT_PASSWORD,
    make_city,
    make_connection,
    make_crossing,
    make_story,
    make_user,
    next_phone,
)

ACTORS = ("owner", "crossed", "stranger", "blocked", "blocked_by", "shadow_banned", "deactivated", "erased",
          "logged_out", "moderator", "admin", "anonymous")
API = "api/v1/"

# (method, route) -> expected status for each actor, in the order of ACTORS:
#                       owner crossd strngr blockd blk_by shadow deactv erased lg_out  moder  admin   anon
MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "auth/register/"):                   (202,  202,   202,   202,   202,   202,   202,   202,   202,   202,   202,   202),
    ("POST", "auth/register/verify/"):            (400,  400,   400,   400,   400,   400,   400,   400,   400,   400,   400,   400),
    ("POST", "auth/login/"):                      (200,  200,   200,   200,   200,   200,   403,   401,   200,   200,   200,   401),
    ("POST", "auth/refresh/"):                    (200,  200,   200,   200,   200,   200,   401,   401,   401,   200,   200,   401),
    ("POST", "auth/logout/"):                     (204,  204,   204,   204,   204,   204,   401,   401,   401,   204,   204,   401),
    ("GET", "auth/sessions/"):                    (200,  200,   200,   200,   200,   200,   401,   401,   401,   200,   200,   401),
    ("DELETE", "auth/sessions/<session>/"):       (204,  404,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("POST", "auth/phone/code/"):                 (202,  202,   202,   202,   202,   202,   401,   401,   401,   202,   202,   401),
    ("POST", "auth/phone/verify/"):               (400,  400,   400,   400,   400,   400,   401,   401,   401,   400,   400,   401),
    ("GET", "me/"):                               (200,  200,   200,   200,   200,   200,   401,   401,   401,   200,   200,   401),
    ("PATCH", "me/"):                             (200,  200,   200,   200,   200,   200,   401,   401,   401,   200,   200,   401),
    ("DELETE", "me/"):                            (204,  204,   204,   204,   204,   204,   401,   401,   401,   204,   204,   401),
    ("GET", "users/<owner>/"):                    (200,  200,   404,   404,   404,   200,   401,   401,   401,   200,   200,   401),
    ("GET", "blocks/"):                           (200,  200,   200,   200,   200,   200,   401,   401,   401,   200,   200,   401),
    ("POST", "blocks/"):                          (400,  201,   201,   201,   200,   201,   401,   401,   401,   201,   201,   401),
    ("DELETE", "blocks/<blocked>/"):              (204,  404,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("POST", "reports/"):                         (400,  201,   201,   201,   201,   201,   401,   401,   401,   201,   201,   401),
    ("GET", "admin/stats/"):                      (404,  404,   404,   404,   404,   404,   401,   401,   401,   200,   200,   401),
    ("GET", "connections/"):                      (200,  200,   200,   200,   200,   200,   401,   401,   401,   200,   200,   401),
    ("POST", "connections/"):                     (400,  409,   404,   404,   404,   201,   401,   401,   401,   404,   404,   401),
    ("DELETE", "connections/<connection>/"):      (204,  204,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("POST", "connections/<pending>/accept/"):     (200,  404,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("POST", "connections/<pending>/decline/"):    (200,  404,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("GET", "connections/<connection>/messages/"): (200,  200,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("POST", "connections/<connection>/messages/"): (201, 201,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("POST", "connections/<connection>/messages/read/"): (200, 200, 404, 404,  404,   404,   401,   401,   401,   404,   404,   401),
    ("GET", "crossings/"):                        (200,  200,   200,   200,   200,   200,   401,   401,   401,   200,   200,   401),
    ("GET", "crossings/<crossing>/"):             (200,  200,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("GET", "locations/"):                        (200,  200,   200,   200,   200,   200,   401,   401,   401,   200,   200,   401),
    ("POST", "locations/"):                       (201,  201,   201,   201,   201,   201,   401,   401,   401,   201,   201,   401),
    ("DELETE", "locations/"):                     (204,  204,   204,   204,   204,   204,   401,   401,   401,   204,   204,   401),
    ("POST", "stories/"):                         (201,  201,   201,   201,   201,   201,   401,   401,   401,   201,   201,   401),
    ("GET", "stories/feed/"):                     (200,  200,   200,   200,   200,   200,   401,   401,   401,   200,   200,   401),
    ("GET", "stories/nearby/"):                   (200,  200,   200,   200,   200,   200,   401,   401,   401,   200,   200,   401),
    ("GET", "stories/close-friends/"):            (200,  200,   200,   200,   200,   200,   401,   401,   401,   200,   200,   401),
    ("POST", "stories/close-friends/"):           (404,  201,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("DELETE", "stories/close-friends/<friend>/"): (204, 404,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("GET", "stories/<story>/"):                  (200,  200,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("DELETE", "stories/<story>/"):               (204,  403,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
    ("POST", "stories/<story>/report/"):          (400,  201,   404,   404,   404,   404,   401,   401,   401,   404,   404,   401),
}

# The path parameter of each route -> the owner's object it names (World attribute).
OBJECTS = {"session_id": "session", "user_id": None, "connection_id": None, "crossing_id": "crossing",
           "story_id": "story"}
# Routes whose user_id / connection_id parameter names a particular object of the owner.
ROUTE_OBJECTS = {
    "users/<user_id>/": "owner", "blocks/<user_id>/": "blocked", "stories/close-friends/<user_id>/": "friend",
    "connections/<connection_id>/": "connection", "connections/<connection_id>/accept/": "pending",
    "connections/<connection_id>/decline/": "pending", "connections/<connection_id>/messages/": "connection",
    "connections/<connection_id>/messages/read/": "connection",
}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def api_routes() -> set[tuple[str, str]]:
    """(METHOD, route) of every endpoint under /api/v1/, routes written with <object> names."""
    found = set()
    for route, callback in _walk(get_resolver().url_patterns):
        if not route.startswith(API):
            continue
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        short = route[len(API):]
        name = ROUTE_OBJECTS.get(short.replace("<uuid:", "<"))
        for converter, obj in OBJECTS.items():
            short = short.replace(f"<uuid:{converter}>", f"<{obj or name}>")
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view_class, method):
                found.add((method.upper(), short))
    return found


def test_every_route_has_a_row_and_every_row_a_route():
    routes = api_routes()
    assert routes - set(MATRIX) == set(), "routes without a row in MATRIX"
    assert set(MATRIX) - routes == set(), "rows in MATRIX for routes that do not exist"
    assert all(len(statuses) == len(ACTORS) for statuses in MATRIX.values())


class World:
    """The owner, an actor of each kind, and the owner's objects."""

    def __init__(self):
        make_city()
        self.users: dict[str, User] = {}
        self.tokens: dict[str, tuple[str, str]] = {}
        owner = self._user("owner", display_name="Owner")
        crossed = self._user("crossed")
        for name in ("stranger", "blocked", "blocked_by", "deactivated", "erased"):
            self._user(name)
        shadow = self._user("shadow_banned", is_shadow_banned=True)
        self._user("moderator", is_staff=True)
        self._user("admin", is_staff=True, is_superuser=True)
        requester = make_user(display_name="Requester")

        self.crossing = make_crossing(owner, crossed).pk
        make_crossing(owner, shadow)
        make_crossing(owner, requester)
        self.connection = make_connection(crossed, owner).pk
        self.message = Message.objects.create(connection_id=self.connection, sender_id=crossed.pk, body="hi").pk
        self.pending = make_connection(requester, owner, status="pending").pk
        self.story = make_story(owner, "mine", visibility="connections").pk
        story_services.add_close_friend(author_id=owner.pk, friend_id=crossed.pk)
        self.friend = crossed.pk
        account_services.block_user(blocker_id=owner.pk, blocked_id=self.users["blocked"].pk)
        account_services.block_user(blocker_id=self.users["blocked_by"].pk, blocked_id=owner.pk)
        self.blocked = self.users["blocked"].pk
        self.owner = owner.pk
        self.session = account_services.open_session(owner, user_agent="other device")[0].pk
        # The owner's session on another device, logged out; a deactivated and an erased user.
        gone, access, refresh = account_services.open_session(owner, user_agent="logged out")
        account_services.revoke_session(gone.pk, user_id=owner.pk)
        self.tokens["logged_out"] = (access, refresh)
        self.users["logged_out"] = owner
        account_services.deactivate_user(self.users["deactivated"].pk)
        account_services.erase_user(self.users["erased"].pk)
        # The revocation markers those write after commit (this world is never committed, and
        # every test starts with an empty cache): each cell writes them again first.
        self.markers = [revocation.session_marker(owner.pk, gone.pk),
                        revocation.user_marker(self.users["deactivated"].pk),
                        revocation.user_marker(self.users["erased"].pk)]

    def _user(self, actor: str, **fields) -> User:
        user = make_user(**fields)
        self.users[actor] = user
        _session, access, refresh = account_services.open_session(user, user_agent=actor)
        self.tokens[actor] = (access, refresh)
        return user

    def client(self, actor: str) -> APIClient:
        client = APIClient()
        if actor in self.tokens:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.tokens[actor][0]}")
        return client

    def body(self, key: tuple[str, str], actor: str):
        user = self.users.get(actor)
        now = timezone.now().isoformat()
        bodies = {
            ("POST", "auth/register/"): {"phone": next_phone(), "password": "a-long-passphrase",
                                         "display_name": "New"},
            ("POST", "auth/register/verify/"): {"phone": next_phone(), "code": "123456"},
            ("POST", "auth/login/"): ({"phone": user.phone, "password": DEFAULT_PASSWORD} if user
                                      else {"phone": "+12025550999", "password": "not-the-password"}),
            ("POST", "auth/refresh/"): {"refresh": self.tokens[actor][1] if actor in self.tokens else "garbage"},
            ("POST", "auth/phone/verify/"): {"code": "123456"},
            ("PATCH", "me/"): {"display_name": "Renamed"},
            ("POST", "blocks/"): {"user_id": str(self.owner)},
            ("POST", "reports/"): {"user_id": str(self.owner), "reason": "spam"},
            ("POST", "connections/"): {"user_id": str(self.owner)},
            ("POST", "connections/<connection>/messages/"): {"body": "hello"},
            ("POST", "connections/<connection>/messages/read/"): {"up_to": str(self.message)},
            ("POST", "locations/"): {"pings": [{"lat": 52.52, "lng": 13.405, "recorded_at": now}]},
            ("POST", "stories/"): {"text": "hi"},
            ("POST", "stories/close-friends/"): {"user_id": str(self.owner)},
            ("POST", "stories/<story>/report/"): {"reason": "spam"},
        }
        return bodies.get(key)

    def path(self, route: str) -> str:
        for name in ("session", "owner", "blocked", "friend", "connection", "pending", "crossing", "story"):
            route = route.replace(f"<{name}>", str(getattr(self, name)))
        query = "?lat=52.52&lng=13.405" if route == "stories/nearby/" else ""
        return f"/{API}{route}{query}"


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module inside a transaction that is rolled back at its end."""
    with django_db_blocker.unblock(), transaction.atomic():
        # Tokens that outlive the module however slow the machine (the default lives 5 minutes).
        with override_settings(ACCESS_TOKEN_TTL=timedelta(hours=2)):
            built = World()
        yield built
        transaction.set_rollback(True)


CELLS = [pytest.param(key, actor, expected, id=f"{key[0]} {key[1]} as {actor}")
         for key, statuses in MATRIX.items() for actor, expected in zip(ACTORS, statuses, strict=True)]


def _foreign_keys_broken() -> str | None:
    """Deferred foreign keys checked now: what a commit would refuse (a 500 in production)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    except IntegrityError as exc:
        return str(exc).splitlines()[0]
    return None


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize(("key", "actor", "expected"), CELLS)
def test_authorization(world, key, actor, expected):
    method, route = key
    client = world.client(actor)
    revocation._write(world.markers)
    with transaction.atomic():  # whatever the cell writes goes, even rows a commit would refuse
        response = getattr(client, method.lower())(world.path(route), world.body(key, actor), format="json")
        broken = _foreign_keys_broken()
        transaction.set_rollback(True)
    assert broken is None, f"the request wrote rows a commit would refuse: {broken}"
    assert response.status_code == expected, (response.status_code, response.content[:300])
    if response.status_code >= 400 and response.content:
        assert response["Content-Type"].startswith("application/json")

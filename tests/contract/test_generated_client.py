"""A Python client generated from the served schema with openapi-python-client is used as is:
every module imports, and a user's journey runs through it against the live app (register,
verify, ping, crossings, connect, chat, a text story, reports, and an error body)."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from datetime import UTC, datetime

import attrs
import httpx
import pytest

from accounts.models import User
from accounts.sms import InMemorySMSBackend
from crossings.detection.run import run_detection
from tests.factories import make_user, next_phone

PACKAGE = "crossings_client"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def client_package(live_api, tmp_path):
    """The client generated from ``/api/schema/`` into a temporary directory, imported."""
    schema = httpx.get(f"{live_api}/api/schema/?format=json", timeout=60)
    assert schema.status_code == 200
    (tmp_path / "schema.json").write_bytes(schema.content)
    bin_dir = os.path.dirname(sys.executable)
    generated = subprocess.run(
        [os.path.join(bin_dir, "openapi-python-client"), "generate", "--path", str(tmp_path / "schema.json"),
         "--meta", "none", "--output-path", str(tmp_path / PACKAGE), "--fail-on-warning"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        package = importlib.import_module(PACKAGE)
        importlib.import_module(f"{PACKAGE}.models")  # sets package.models
        yield package
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _ops(package, tag: str, *names: str):
    return [importlib.import_module(f"{package.__name__}.api.{tag}.{name}") for name in names]


def _signed_up(package, base_url: str, display_name: str):
    """A verified user's client, signed up through the schema's register operation.

    If registration answers with tokens they are used; if it answers otherwise (a sign-up that
    sends a code first, or that does not say whether the phone is taken), the account is made in
    the database as the server would and the user logs in through the login operation.  Then the
    phone is verified through the code operations.
    """
    (register,) = _ops(package, "auth", "auth_register_create")
    (login,) = _ops(package, "auth", "auth_login_create")
    models = package.models
    phone = next_phone()
    anonymous = package.Client(base_url=base_url, raise_on_unexpected_status=True)
    known = attrs.fields_dict(models.RegisterRequest)  # whichever of these the schema asks for
    offered = {"phone": phone, "password": PASSWORD, "display_name": display_name}
    body = models.RegisterRequest(**{name: value for name, value in offered.items() if name in known})
    answer = register.sync(client=anonymous, body=body)  # a status the schema does not list raises
    access = getattr(answer, "access", None)
    if not isinstance(access, str):
        if not User.objects.filter(phone=phone).exists():
            make_user(phone=phone, password=PASSWORD, display_name=display_name)
        signed_in = login.sync(client=anonymous, body=models.LoginRequest(phone=phone, password=PASSWORD))
        assert isinstance(signed_in, models.AuthResponse), signed_in
        access = signed_in.access
    client = package.AuthenticatedClient(base_url=base_url, token=access, raise_on_unexpected_status=True)

    code_op, verify_op = _ops(package, "auth", "auth_phone_code_create", "auth_phone_verify_create")
    sent = code_op.sync(client=client)
    assert isinstance(sent, models.PhoneCodeSent), sent
    code = re.search(r"\b(\d{6})\b", InMemorySMSBackend.outbox[-1].body).group(1)
    verified = verify_op.sync(client=client, body=models.PhoneVerifyRequest(code=code))
    assert isinstance(verified, models.MeWrapped) and verified.user.is_verified, verified
    return client, verified.user


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_every_generated_module_imports(client_package):
    api = importlib.import_module(f"{client_package.__name__}.api")
    modules = [info.name for info in pkgutil.walk_packages(api.__path__, f"{api.__name__}.")]
    for name in modules:
        importlib.import_module(name)
    assert len(modules) > 40  # tags and operations


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_users_journey_through_the_generated_client(client_package, live_api):
    package, models = client_package, client_package.models
    alice, alice_me = _signed_up(package, live_api, "Alice")
    bob, bob_me = _signed_up(package, live_api, "Bob")

    # Both pass the same corner at the same time; the detector finds the crossing.
    (ping,) = _ops(package, "locations", "locations_create")
    for client in (alice, bob):
        at = datetime.now(UTC)
        stored = ping.sync(client=client, body=models.PingBatchRequest(
            pings=[models.PingInRequest(lat=52.52, lng=13.405, recorded_at=at, accuracy_m=5.0)]))
        assert isinstance(stored, models.IngestResult) and stored.accepted == 1, stored
    run_detection()
    (crossings,) = _ops(package, "crossings", "crossings_list")
    page = crossings.sync(client=alice, page_size=10)
    assert isinstance(page, models.CrossingPageOut), page
    assert [crossing.user.id for crossing in page.results] == [bob_me.id]

    # Alice asks to connect; Bob sees the request and accepts it.
    request_op, list_op, accept_op = _ops(package, "connections", "connections_create", "connections_list",
                                          "connections_accept_create")
    asked = request_op.sync(client=alice, body=models.ConnectionRequestInRequest(user_id=bob_me.id))
    assert isinstance(asked, models.ConnectionOut) and asked.status == "pending", asked
    incoming = list_op.sync(client=bob, status=models.ConnectionsListStatus.INCOMING)
    assert isinstance(incoming, models.ConnectionPageOut), incoming
    assert [conn.id for conn in incoming.results] == [asked.id]
    accepted = accept_op.sync(asked.id, client=bob)
    assert isinstance(accepted, models.ConnectionOut) and accepted.status == "accepted", accepted

    # They chat.
    send, read = _ops(package, "connections", "connections_messages_create", "connections_messages_list")
    sent = send.sync(asked.id, client=alice, body=models.MessageInRequest(body="Was that you at the corner?"))
    assert isinstance(sent, models.MessageOut), sent
    thread = read.sync(asked.id, client=bob)
    assert isinstance(thread, models.MessagePageOut), thread
    assert [message.body for message in thread.results] == ["Was that you at the corner?"]

    # Alice posts a text story; Bob sees it in his feed and reports it, and reports Alice.
    post, feed = _ops(package, "stories", "stories_create", "stories_feed_list")
    story = post.sync(client=alice, body=models.StoryInRequest(text="Sunny on the corner",
                                                               visibility=models.VisibilityEnum.CONNECTIONS))
    assert isinstance(story, models.StoryOut) and story.kind == "text", story
    bobs_feed = feed.sync(client=bob)
    assert isinstance(bobs_feed, models.FeedOut), bobs_feed
    assert [s.id for group in bobs_feed.results for s in group.stories] == [story.id]
    (report,) = _ops(package, "reports", "reports_create")
    story_report = report.sync(client=bob, body=models.StoryReportTargetInRequest(
        story_id=story.id, reason=models.StoryReportReasonEnum.SPAM))
    assert isinstance(story_report, models.StoryReportOut) and story_report.story_id == story.id, story_report
    user_report = report.sync(client=bob, body=models.UserReportInRequest(
        user_id=alice_me.id, reason=models.UserReportReasonEnum.IMPERSONATION, details="Not the real Alice"))
    assert isinstance(user_report, models.UserReport) and user_report.user_id == alice_me.id, user_report

    # An error comes back as the documented Error model.
    refused = crossings.sync(client=alice, page_size=0)
    assert isinstance(refused, models.Error), refused
    assert refused.code == "invalid" and refused.fields.additional_properties == {
        "page_size": ["Must be an integer between 1 and 100."]}

"""`manage.py serve` (make run): its arguments in plain words, the URL it polls and prints."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from core.management.commands import serve
from tests import media_samples
from tests.core.test_command_output import operator_env
from tests.waiting import wait_until


@pytest.mark.parametrize(("args", "words"), [
    (["--bind", "8000"], "--bind must be host:port with a port from 1 to 65535, e.g. 127.0.0.1:8000 (got '8000')"),
    (["--bind", "127.0.0.1:99999"], "--bind must be host:port with a port from 1 to 65535"),
    (["--ws-bind", "localhost:ws"], "--ws-bind must be host:port with a port from 1 to 65535"),
    (["--workers", "0"], "--workers must be between 1 and 64 (got 0)"),
])
def test_bad_arguments_are_refused_before_anything_starts(args, words):
    with pytest.raises(CommandError) as raised:
        call_command("serve", *args)
    assert words in str(raised.value)


def test_a_wildcard_bind_is_polled_and_printed_on_loopback():
    assert serve.local_url("0.0.0.0:8000") == "http://127.0.0.1:8000"
    assert serve.local_url("127.0.0.1:18000") == "http://127.0.0.1:18000"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
def test_the_server_make_run_starts_serves_uploaded_media(auth_client, settings, tmp_path):
    """`manage.py serve` as `make run` runs it: ready line once /health/ answers, then the
    workers grown to the count asked for; an uploaded story's media_url answers from gunicorn."""
    settings.MEDIA_ROOT, settings.MEDIA_CDN_URL = str(tmp_path / "media"), ""
    story = auth_client.post("/api/v1/stories/", {
        "media": SimpleUploadedFile("x.bin", media_samples.image_bytes("PNG"), content_type="image/png"),
        "visibility": "public"}, format="multipart").json()
    port = _free_port()
    env = {**operator_env(tmp_path), "CROSSINGS_DATA_DIR": str(tmp_path / "data"), "SECRET_KEY": "serve-test",
           "REDIS_URL": settings.REDIS_URL, "MEDIA_ROOT": str(tmp_path / "media"),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")}
    (tmp_path / "prometheus").mkdir()  # this process's own metrics go there before serve empties it
    out = tmp_path / "serve.out"
    with open(out, "w") as fh:
        proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}", "--workers",
                                 "3", "--no-celery", "--no-ws"], cwd=django_settings.BASE_DIR, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    def ready() -> bool:
        assert proc.poll() is None, out.read_text()
        return "Crossings is ready" in out.read_text()

    try:
        wait_until(ready, what="serve's ready line")
        base = f"http://127.0.0.1:{port}"
        assert f"media     {base}/media/" in out.read_text()
        with urllib.request.urlopen(base + story["media_url"], timeout=30) as response:
            assert response.status == 200 and response.headers["Content-Type"] == "image/png"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.read()[:8] == b"\x89PNG\r\n\x1a\n"
        for missing in ("/media/stories/none.png", "/media/stories/", "/media/%2e%2e/serve.out"):
            with pytest.raises(urllib.error.HTTPError) as raised:
                urllib.request.urlopen(base + missing, timeout=30)
            assert raised.value.code == 404, missing
        wait_until(lambda: out.read_text().count("Booting worker") == 3, what="three gunicorn workers")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    assert proc.returncode == 0, out.read_text()

"""`manage.py serve` (make run): its arguments in plain words, the URL it polls and prints."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from core.management.commands import serve


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

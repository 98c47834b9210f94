"""Sending SMS through a pluggable backend (settings.SMS_BACKEND), the way Django sends mail.

``ConsoleSMSBackend`` (the default) logs; ``InMemorySMSBackend`` keeps an ``outbox`` for tests;
a real provider is a subclass with ``send_messages``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SMSMessage:
    to: str
    body: str


class BaseSMSBackend:
    def send_messages(self, messages: list[SMSMessage]) -> int:  # pragma: no cover - interface
        raise NotImplementedError


class ConsoleSMSBackend(BaseSMSBackend):
    """Writes each message to the log (development only: the log then holds the code)."""

    def send_messages(self, messages: list[SMSMessage]) -> int:
        for message in messages:
            logger.warning("SMS to %s: %s", message.to, message.body)
        return len(messages)


class InMemorySMSBackend(BaseSMSBackend):
    """Keeps messages in ``InMemorySMSBackend.outbox`` (tests empty it between cases)."""

    outbox: list[SMSMessage] = []

    def send_messages(self, messages: list[SMSMessage]) -> int:
        type(self).outbox.extend(messages)
        return len(messages)


def get_backend() -> BaseSMSBackend:
    return import_string(settings.SMS_BACKEND)()


def send_sms(to: str, body: str) -> None:
    get_backend().send_messages([SMSMessage(to=to, body=body)])

"""Account use cases: sign-up, sessions and token rotation."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Session, User
from accounts.tokens import (
    InvalidToken,
    hash_refresh_token,
    issue_access_token,
    make_refresh_token,
    parse_refresh_token,
)


def open_session(user: User, *, user_agent: str = "", ip: str | None = None) -> tuple[Session, str, str]:
    """Start a device session; return it with a new access token and refresh token."""
    now = timezone.now()
    session = Session(user=user, user_agent=(user_agent or "")[:256], ip=ip or None, created_at=now,
                      last_used_at=now, expires_at=now + settings.REFRESH_TOKEN_TTL)
    refresh = make_refresh_token(session.id, 0)
    session.refresh_token_hash = hash_refresh_token(refresh)
    session.save(force_insert=True)
    User.objects.filter(pk=user.pk).update(last_login=now)
    return session, issue_access_token(user, session.id), refresh


@transaction.atomic
def rotate_refresh_token(token: str) -> tuple[str, str]:
    """Exchange a refresh token for a new access and refresh token.

    Presenting a token that was already rotated away means it leaked: the whole session
    is revoked, so neither the thief nor the owner can use it any longer.
    """
    parts = parse_refresh_token(token)
    session = (Session.objects.select_for_update().select_related("user")
               .filter(pk=parts.session_id).first())
    if session is None or not session.is_live or not session.user.is_active:
        raise InvalidToken("Session has ended; log in again.")
    if parts.generation != session.generation or hash_refresh_token(token) != session.refresh_token_hash:
        if parts.generation < session.generation:
            session.revoked_at = timezone.now()
            session.save(update_fields=["revoked_at"])
            raise InvalidToken("Refresh token was already used; the session has been revoked.")
        raise InvalidToken("Refresh token is invalid.")
    session.generation += 1
    new_refresh = make_refresh_token(session.id, session.generation)
    session.refresh_token_hash = hash_refresh_token(new_refresh)
    session.last_used_at = timezone.now()
    session.save(update_fields=["generation", "refresh_token_hash", "last_used_at"])
    return issue_access_token(session.user, session.id), new_refresh


def revoke_session(session_id, *, user_id=None) -> bool:
    """End one session (optionally only if it belongs to ``user_id``)."""
    qs = Session.objects.filter(pk=session_id, revoked_at__isnull=True)
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    return qs.update(revoked_at=timezone.now()) > 0


def revoke_all_sessions(user_id) -> int:
    return Session.objects.filter(user_id=user_id, revoked_at__isnull=True).update(revoked_at=timezone.now())


# ---------------------------------------------------------------------- blocks


def _after_commit_blocks_changed(a_id, b_id) -> None:
    from accounts import selectors

    def invalidate():
        selectors.bump_hidden_generation(a_id)
        selectors.bump_hidden_generation(b_id)

    transaction.on_commit(invalidate)


@transaction.atomic
def block_user(*, blocker_id, blocked_id) -> bool:
    """``blocker`` blocks ``blocked`` (idempotent); returns True when a new block was made."""
    from accounts.models import Block
    from accounts.signals import user_blocked

    if str(blocker_id) == str(blocked_id):
        raise ValueError("cannot block oneself")
    _block, created = Block.objects.get_or_create(blocker_id=blocker_id, blocked_id=blocked_id)
    if created:
        user_blocked.send(sender=Block, blocker_id=blocker_id, blocked_id=blocked_id)
        _after_commit_blocks_changed(blocker_id, blocked_id)
    return created


@transaction.atomic
def unblock_user(*, blocker_id, blocked_id) -> bool:
    """Lift a block; returns False when there was none."""
    from accounts.models import Block
    from accounts.signals import user_unblocked

    deleted, _ = Block.objects.filter(blocker_id=blocker_id, blocked_id=blocked_id).delete()
    if deleted:
        user_unblocked.send(sender=Block, blocker_id=blocker_id, blocked_id=blocked_id)
        _after_commit_blocks_changed(blocker_id, blocked_id)
    return bool(deleted)


def profile_changed(user_id) -> None:
    """Tell other apps and the profile cache that ``user_id``'s profile or flags changed."""
    from accounts import selectors
    from accounts.signals import profile_changed as signal

    signal.send(sender=User, user_id=user_id)
    transaction.on_commit(lambda: selectors.invalidate_profiles([user_id]))

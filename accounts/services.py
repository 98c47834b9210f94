"""Account use cases: sign-up, sessions and token rotation, profiles, phone verification,
blocks, reports, moderation and the ``last_active_at`` hot counter.

Every write to accounts' tables goes through here.  Caches are invalidated after commit;
signals for other apps are sent inside the transaction (docs/subsystems/extension-points.md).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Least
from django.http import Http404
from django.utils import timezone
from redis.exceptions import ResponseError

from accounts import revocation, selectors, signals, sms
from accounts.models import (
    Block,
    PendingRegistration,
    PhoneCode,
    ReportStatus,
    Session,
    User,
    UserReport,
    normalize_phone,
)
from accounts.tokens import (
    InvalidToken,
    hash_refresh_token,
    issue_access_token,
    make_refresh_token,
    parse_refresh_token,
)
from core.cache.client import redis_client

logger = logging.getLogger(__name__)

DUPLICATE_PHONE_MESSAGE = "An account with this phone number already exists."

# ------------------------------------------------------------------- sign-up/in


REGISTRATION_SENT = ("If this number can be registered, a code is on its way by SMS: "
                     "send it to auth/register/verify/ to finish.")
REGISTRATION_CODE_INVALID = "The code is not correct or has expired; register again for a new one."




def _registration_code_hash(phone: str, code: str) -> str:
    key = hashlib.sha256(("register-code:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def start_registration(*, phone: str, password: str, display_name: str) -> None:
    """Begin a sign-up: text a code to ``phone`` (E.164; password already validated).

    The caller answers the same whatever happens here.  A number without an account gets a
    code (the account is made by ``complete_registration``); a number with one gets a notice
    instead, and nothing is stored.  Both paths hash the password, query once, write or
    delete one pending row and send one SMS, so their timing is alike too.
    """
    password_hash = make_password(password)
    now = timezone.now()
    if User.objects.filter(phone=phone).exists():
        PendingRegistration.objects.filter(phone=phone).delete()
        sms.send_sms(phone, "Someone tried to sign up for Crossings with this number, which already has an "
                            "account. If it was you, log in instead; otherwise ignore this message.")
        return
    code = f"{secrets.randbelow(1_000_000):06d}"
    PendingRegistration.objects.update_or_create(phone=phone, defaults={
        "password": password_hash, "display_name": display_name, "code_hash": _registration_code_hash(phone, code),
        "created_at": now, "expires_at": now + settings.PHONE_CODE_TTL, "attempts": 0,
    })
    minutes = max(1, int(settings.PHONE_CODE_TTL.total_seconds() // 60))
    sms.send_sms(phone, f"Your Crossings code is {code}. It expires in {minutes} minutes.")


def complete_registration(*, phone: str, code: str) -> User:
    """Create the account of a pending sign-up whose code is right (verified phone).

    Raises ValidationError with one message for every failure (no pending sign-up, wrong,
    expired or exhausted code, number taken meanwhile); each try counts and is committed.
    """
    now = timezone.now()
    with transaction.atomic():
        pending = PendingRegistration.objects.select_for_update().filter(phone=phone).first()
        if pending is None or pending.expires_at <= now or pending.attempts >= settings.PHONE_CODE_MAX_ATTEMPTS:
            pending = None
        elif not hmac.compare_digest(pending.code_hash, _registration_code_hash(phone, code)):
            pending.attempts += 1
            pending.save(update_fields=["attempts"])
            pending = None
        else:
            user = User(phone=phone, display_name=pending.display_name, password=pending.password,
                        is_verified=True)
            pending.delete()
            try:
                with transaction.atomic():
                    user.save(force_insert=True)
            except IntegrityError:  # the number got an account meanwhile (the admin)
                pending = None
            else:
                return user
    raise ValidationError({"code": [REGISTRATION_CODE_INVALID]})


def authenticate_phone(phone: str, password: str) -> User | None:
    """The user with this phone and password, or None.  Deactivated users are returned:
    the caller refuses them only after the password proved who is asking."""
    try:
        normalized: str | None = normalize_phone(phone)
    except ValidationError:
        normalized = None
    user = User.objects.filter(phone=normalized).first() if normalized else None
    if user is None:
        make_password(password)  # same work as a real check: no timing oracle for "no such phone"
        return None
    return user if user.check_password(password) else None


# --------------------------------------------------------------------- sessions


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


def rotate_refresh_token(token: str) -> tuple[str, str]:
    """Exchange a refresh token for a new access and refresh token.

    Presenting a token that was already rotated away means it leaked: the whole session
    is revoked, so neither the thief nor the owner can use it any longer.  The revocation
    is committed before the error is raised (raising inside the transaction would undo it).
    """
    parts = parse_refresh_token(token)
    with transaction.atomic():
        session = (Session.objects.select_for_update().select_related("user")
                   .filter(pk=parts.session_id).first())
        if session is None or not session.is_live or not session.user.is_active:
            error = "Session has ended; log in again."
        elif parts.generation == session.generation and hmac.compare_digest(
            hash_refresh_token(token), session.refresh_token_hash
        ):
            session.generation += 1
            new_refresh = make_refresh_token(session.id, session.generation)
            session.refresh_token_hash = hash_refresh_token(new_refresh)
            session.last_used_at = timezone.now()
            session.save(update_fields=["generation", "refresh_token_hash", "last_used_at"])
            return issue_access_token(session.user, session.id), new_refresh
        elif parts.generation < session.generation:
            Session.objects.filter(pk=session.pk).update(**_revoked_now())
            revocation.sessions_revoked([(session.user_id, session.pk)])
            signals.session_revoked.send(sender=Session, user_id=session.user_id, session_id=session.pk)
            error = "Refresh token was already used; the session has been revoked."
        else:
            error = "Refresh token is invalid."
    raise InvalidToken(error)


def live_sessions(user_id):
    """The user's sessions that can still be refreshed."""
    return Session.objects.filter(user_id=user_id, revoked_at__isnull=True, expires_at__gt=timezone.now())


@transaction.atomic
def revoke_session(session_id, *, user_id=None) -> bool:
    """End one session (optionally only if it belongs to ``user_id``); its access tokens stop
    working with their next request."""
    qs = Session.objects.filter(pk=session_id, revoked_at__isnull=True)
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    return _revoke(qs) > 0


def _revoke(sessions) -> int:
    """Revoke the live sessions among ``sessions`` and refuse their access tokens from now on."""
    pairs = list(sessions.filter(revoked_at__isnull=True).values_list("user_id", "pk"))
    if not pairs:
        return 0
    Session.objects.filter(pk__in=[pk for _user_id, pk in pairs]).update(**_revoked_now())
    revocation.sessions_revoked(pairs)
    for user_id, session_id in pairs:
        signals.session_revoked.send(sender=Session, user_id=user_id, session_id=session_id)
    return len(pairs)


def _revoked_now() -> dict:
    """Fields of a revocation: expires_at moves to now too (see purge_ended_sessions_and_codes)."""
    now = timezone.now()
    return {"revoked_at": now, "expires_at": Least(F("expires_at"), Value(now))}


@transaction.atomic
def revoke_all_sessions(user_id) -> int:
    """Log the user out everywhere: every session ends and its access tokens stop working."""
    return _revoke(Session.objects.filter(user_id=user_id))


SESSION_KEEP_AFTER_END = timedelta(days=7)


def purge_ended_sessions_and_codes(batch_size: int = 5000) -> int:
    """Delete sessions that ended (revoked or expired) over a week ago, dead phone codes and
    sign-ups whose code expired a day ago.

    In batches by primary key, so a big backlog never holds long locks; returns the count.
    """
    now = timezone.now()
    # Revoking also moves expires_at to the revocation time, so one index finds both kinds.
    ended = Session.objects.filter(expires_at__lt=now - SESSION_KEEP_AFTER_END)
    deleted = 0
    while ids := list(ended.values_list("pk", flat=True)[:batch_size]):
        deleted += Session.objects.filter(pk__in=ids).delete()[0]
    dead_codes = Q(expires_at__lt=now - timedelta(days=1)) | Q(used_at__isnull=False)
    deleted += PhoneCode.objects.filter(dead_codes).delete()[0]
    deleted += PendingRegistration.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()[0]
    return deleted


# ---------------------------------------------------------------------- profile


def profile_changed(user_id) -> None:
    """Tell other apps and the profile cache that ``user_id``'s profile or flags changed."""
    signals.profile_changed.send(sender=User, user_id=user_id)
    transaction.on_commit(lambda: selectors.invalidate_profiles([user_id]))


def _delete_file_after_commit(name: str) -> None:
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))


PROFILE_FIELDS = ("display_name", "bio", "avatar", "ghost_mode")


@transaction.atomic
def update_profile(user_id, **changes) -> User:
    """Change profile fields (``avatar=None`` removes the picture)."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"not profile fields: {sorted(unknown)}")
    user = User.objects.select_for_update().get(pk=user_id)
    old_avatar = user.avatar.name if user.avatar else ""
    for name, value in changes.items():
        if name == "avatar":
            if value is None:
                user.avatar = ""
            else:
                user.avatar.save(f"{user.pk.hex}.{_image_extension(value)}", value, save=False)
        else:
            setattr(user, name, value)
    if changes:
        user.save(update_fields=list(changes))
        if "avatar" in changes and old_avatar and old_avatar != (user.avatar.name or ""):
            _delete_file_after_commit(old_avatar)
        profile_changed(user.pk)
    return user


def _image_extension(upload) -> str:
    image_format = getattr(getattr(upload, "image", None), "format", None) or "jpeg"
    return {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}.get(image_format.upper(), "img")


ERASE_DEACTIVATED_MESSAGE = ("This account is deactivated and cannot be erased by its owner; "
                             "contact support to have it erased.")


class AccountDeactivated(Exception):
    pass


@transaction.atomic
def erase_own_account(user_id) -> None:
    """The owner erases their account; refused (``AccountDeactivated``) when staff deactivated
    it, so that nobody escapes moderation by erasing the account that was reported."""
    active = User.objects.select_for_update().filter(pk=user_id).values_list("is_active", flat=True).first()
    if active is False:
        raise AccountDeactivated(ERASE_DEACTIVATED_MESSAGE)
    erase_user(user_id)


@transaction.atomic
def erase_user(user_id) -> None:
    """Erase an account and its data.  Other apps delete theirs on ``user_erasing``;
    sessions, blocks and codes go with the row (FK cascade); reports by and about the user
    stay, with the user reference set to NULL.  Every access token of the user fails at once."""
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        return
    user_id = user.pk  # delete() sets user.pk to None
    partners = selectors.load_hidden_user_ids(user_id)
    avatar = (user.avatar.name or "") if user.avatar else ""
    signals.user_erasing.send(sender=User, user_id=user_id)
    revocation.users_revoked([user_id])
    user.delete()
    _delete_file_after_commit(avatar)

    def invalidate():
        selectors.invalidate_profiles([user_id])
        selectors.bump_hidden(*partners, user_id)

    transaction.on_commit(invalidate)


# ------------------------------------------------------------------- moderation


@transaction.atomic
def deactivate_users(user_ids: Iterable) -> int:
    """Deactivate users: they cannot log in or refresh, every session is revoked and every
    access token they hold fails from their next request on."""
    ids = list(user_ids)
    changed = list(User.objects.filter(pk__in=ids, is_active=True).values_list("pk", flat=True))
    User.objects.filter(pk__in=changed).update(is_active=False)
    _revoke(Session.objects.filter(user_id__in=ids))
    revocation.users_revoked(ids)
    for user_id in changed:
        profile_changed(user_id)
    return len(changed)


def deactivate_user(user_id) -> bool:
    return deactivate_users([user_id]) > 0


@transaction.atomic
def reactivated(user_id) -> None:
    """Staff turned ``is_active`` back on (the admin's form): new logins work again at once."""
    revocation.user_restored(user_id)
    profile_changed(user_id)


@transaction.atomic
def _set_flag(user_ids: Iterable, field: str, value) -> int:
    ids = list(User.objects.filter(pk__in=list(user_ids)).exclude(**{field: value}).values_list("pk", flat=True))
    User.objects.filter(pk__in=ids).update(**{field: value})
    for user_id in ids:
        profile_changed(user_id)
    return len(ids)


def set_shadow_ban(user_ids: Iterable, banned: bool) -> int:
    """Shadow-banned users keep using the app, but nobody else sees them."""
    return _set_flag(user_ids, "is_shadow_banned", banned)


def set_verified(user_ids: Iterable, verified: bool = True) -> int:
    return _set_flag(user_ids, "is_verified", verified)


# ------------------------------------------------------------ phone verification


class PhoneAlreadyVerified(Exception):
    pass


def _hash_code(user_id, code: str) -> str:
    """Keyed hash: a leaked table alone does not give away codes (6 digits are few)."""
    key = hashlib.sha256(("phone-code:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, f"{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


def send_phone_code(user: User) -> PhoneCode:
    """Send a new 6-digit code by SMS; earlier unused codes stop working."""
    if user.is_verified:
        raise PhoneAlreadyVerified()
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = timezone.now()
    with transaction.atomic():
        PhoneCode.objects.filter(user_id=user.pk, used_at__isnull=True).delete()
        phone_code = PhoneCode.objects.create(
            user_id=user.pk, phone=user.phone, code_hash=_hash_code(user.pk, code),
            created_at=now, expires_at=now + settings.PHONE_CODE_TTL,
        )

    minutes = max(1, int(settings.PHONE_CODE_TTL.total_seconds() // 60))
    sms.send_sms(user.phone, f"Your Crossings code is {code}. It expires in {minutes} minutes.")
    return phone_code


def verify_phone_code(user_id, code: str) -> None:
    """Check a code; on success the user is verified.  Raises ValidationError otherwise.

    Each try counts, and counting is committed before the error is raised.
    """
    now = timezone.now()
    with transaction.atomic():
        pending = (PhoneCode.objects.select_for_update()
                   .filter(user_id=user_id, used_at__isnull=True).order_by("-created_at").first())
        if pending is None:
            error = "No code is pending; request a new one."
        elif pending.expires_at <= now:
            error = "The code has expired; request a new one."
        elif pending.attempts >= settings.PHONE_CODE_MAX_ATTEMPTS:
            error = "Too many wrong attempts; request a new code."
        else:
            pending.attempts += 1
            if hmac.compare_digest(pending.code_hash, _hash_code(user_id, code)):
                pending.used_at = now
                pending.save(update_fields=["attempts", "used_at"])
                User.objects.filter(pk=user_id).update(is_verified=True)
                profile_changed(user_id)
                return
            pending.save(update_fields=["attempts"])
            left = settings.PHONE_CODE_MAX_ATTEMPTS - pending.attempts
            error = f"The code is not correct ({left} attempts left)." if left else \
                "The code is not correct; request a new code."
    raise ValidationError({"code": [error]})


# ---------------------------------------------------------------------- blocks


def _after_commit_blocks_changed(a_id, b_id) -> None:
    def invalidate():
        selectors.bump_hidden(a_id, b_id)

    transaction.on_commit(invalidate)


def _require_active_user(user_id) -> None:
    if not User.objects.filter(pk=user_id, is_active=True).exists():
        raise Http404("No such user.")


@transaction.atomic
def block_user(*, blocker_id, blocked_id) -> tuple[Block, bool]:
    """``blocker`` blocks ``blocked`` (idempotent); returns the block and whether it is new."""
    if str(blocker_id) == str(blocked_id):
        raise ValidationError({"user_id": ["You cannot block yourself."]})
    _require_active_user(blocked_id)
    block, created = Block.objects.get_or_create(blocker_id=blocker_id, blocked_id=blocked_id)
    if created:
        signals.user_blocked.send(sender=Block, blocker_id=block.blocker_id, blocked_id=block.blocked_id)
        _after_commit_blocks_changed(block.blocker_id, block.blocked_id)
    return block, created


@transaction.atomic
def unblock_user(*, blocker_id, blocked_id) -> bool:
    """Lift a block; returns False when there was none."""
    deleted, _ = Block.objects.filter(blocker_id=blocker_id, blocked_id=blocked_id).delete()
    if deleted:
        signals.user_unblocked.send(sender=Block, blocker_id=blocker_id, blocked_id=blocked_id)
        _after_commit_blocks_changed(blocker_id, blocked_id)
    return bool(deleted)


# --------------------------------------------------------------------- reports


def report_user(*, reporter_id, reported_id, reason: str, details: str = "") -> tuple[UserReport, bool]:
    """Queue a report for staff; a second report while one is open returns the open one."""
    if str(reporter_id) == str(reported_id):
        raise ValidationError({"user_id": ["You cannot report yourself."]})
    _require_active_user(reported_id)
    open_reports = UserReport.objects.filter(reporter_id=reporter_id, reported_id=reported_id,
                                             status=ReportStatus.OPEN)
    existing = open_reports.first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            report = UserReport.objects.create(reporter_id=reporter_id, reported_id=reported_id,
                                               reason=reason, details=details)
    except IntegrityError:  # a concurrent identical report won
        return open_reports.get(), False
    return report, True


def close_reports(report_ids: Iterable, *, staff_user_id, status: str) -> int:
    """Resolve or dismiss open reports."""
    if status not in (ReportStatus.RESOLVED, ReportStatus.DISMISSED):
        raise ValueError(f"cannot close a report as {status!r}")
    return UserReport.objects.filter(pk__in=list(report_ids), status=ReportStatus.OPEN).update(
        status=status, resolved_at=timezone.now(), resolved_by_id=staff_user_id
    )


# -------------------------------------------------------- last_active_at counter

ACTIVE_MARK_INTERVAL_S = 60
_LOCAL_MARKS_MAX = 100_000
local_marks: dict[uuid.UUID, float] = {}
# SET NX guard + HSET into the pending hash, in one round trip (a Lua script).
_MARK_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0
"""


def active_keys() -> tuple[str, str, str]:
    # The "{la}" hash tag puts all of them in one Redis Cluster slot (the script needs that);
    # at one guard write per active user a minute, one node carries it easily.
    base = f"{settings.CACHE_KEY_PREFIX}:{{la}}"
    return f"{base}:guard:", f"{base}:pending", f"{base}:flushing"


def mark_active(user_id) -> bool:
    """Note that the user is active now; at most one Redis write per user a minute.

    An in-process memo skips Redis entirely for users seen in the last minute; across
    processes the SET NX guard keeps it to one pending write.  Redis being away only loses
    the mark.  Returns True when this call recorded a new mark.
    """
    now = time.monotonic()
    last = local_marks.get(user_id)
    if last is not None and now - last < ACTIVE_MARK_INTERVAL_S:
        return False
    if len(local_marks) >= _LOCAL_MARKS_MAX:
        local_marks.clear()
    local_marks[user_id] = now

    guard, pending, _ = active_keys()
    try:
        client = redis_client()
        script = client.register_script(_MARK_SCRIPT)
        return bool(script(keys=[guard + str(user_id), pending],
                           args=[ACTIVE_MARK_INTERVAL_S, str(user_id), int(time.time())]))
    except Exception:
        logger.warning("could not mark user %s active", user_id, exc_info=True)
        return False


FLUSH_SQL = """
UPDATE users AS u SET last_active_at = to_timestamp(v.ts)
FROM unnest(%s::uuid[], %s::double precision[]) AS v(id, ts)
WHERE u.id = v.id AND (u.last_active_at IS NULL OR u.last_active_at < to_timestamp(v.ts))
"""


def flush_last_active(batch_size: int = 1000) -> int:
    """Write pending ``last_active_at`` marks to the database in batched UPDATEs.

    The pending hash is renamed away atomically first, so marks arriving meanwhile go to a
    new hash; a flush that died half-way leaves the renamed hash, which the next run
    finishes first (the UPDATE only moves times forward, so repeating it is harmless).
    Returns the number of users updated.
    """
    client = redis_client()
    _, pending, flushing = active_keys()
    if not client.exists(flushing):
        try:
            client.rename(pending, flushing)
        except ResponseError:  # no pending marks
            return 0
    updated = 0
    items = client.hscan_iter(flushing, count=batch_size)
    while chunk := list(islice(items, batch_size)):
        ids, stamps = [], []
        for raw_id, raw_ts in chunk:
            try:
                user_id = str(uuid.UUID(raw_id.decode() if isinstance(raw_id, bytes) else raw_id))
                stamp = float(raw_ts)
            except (ValueError, TypeError):
                continue  # not ours: skip it rather than fail the whole flush
            ids.append(user_id)
            stamps.append(stamp)
        order = sorted(range(len(ids)), key=ids.__getitem__)  # index order: fewer page hops
        with connection.cursor() as cursor:
            cursor.execute(FLUSH_SQL, [[ids[i] for i in order], [stamps[i] for i in order]])
            updated += cursor.rowcount
    client.delete(flushing)
    return updated

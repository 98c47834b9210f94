"""Every write of the stories app: posting, deleting, close friends, reports, the expiry sweep.

Each write bumps the author's cache version (``selectors.AUTHOR_NS``) now and after commit;
media files are deleted only after the rows that point at them are committed as gone.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from connections import selectors as connection_selectors
from core import geo
from core.cache import keys as cachekeys
from stories import media, selectors, signals
from stories.models import (
    CloseFriend,
    Story,
    StoryKind,
    StoryReport,
    StoryReportReason,
    StoryReportStatus,
    Visibility,
)

logger = logging.getLogger(__name__)
SWEEP_BATCH = 1000


def _bump_authors(*author_ids) -> None:
    cachekeys.bump_on_commit([(selectors.AUTHOR_NS, aid) for aid in author_ids])


def _delete_media_on_commit(names) -> None:
    names = [name for name in names if name]
    if names:
        transaction.on_commit(lambda: media.delete_media(names))


def create_story(*, author_id, text: str = "", caption: str = "", visibility: str = Visibility.CONNECTIONS,
                 upload=None, lat: float | None = None, lng: float | None = None) -> Story:
    """Post a story: text, or media (validated by content) with an optional caption.

    ``lat``/``lng`` are coarsened to an H3 cell before anything is stored.
    """
    text, caption = (text or "").strip(), (caption or "").strip()
    if upload is None and not text:
        raise ValidationError({"text": ["A story needs text or media."]})
    if upload is not None and text:
        raise ValidationError({"text": ["Send either text or media (with a caption), not both."]})
    now = timezone.now()
    story = Story(author_id=author_id, text=text, caption=caption, visibility=visibility, created_at=now,
                  expires_at=now + timedelta(hours=settings.STORY_TTL_HOURS), kind=StoryKind.TEXT)
    if lat is not None and lng is not None:
        story.place_cell, story.place_lat, story.place_lng = geo.coarse_place(lat, lng)
    saved_name = ""
    if upload is not None:
        sniffed = media.validate_upload(upload)
        stored = sniffed.content or upload  # an image is stored re-encoded, without its metadata
        story.kind, story.media_type, story.media_bytes = sniffed.kind, sniffed.mime, stored.size
        saved_name = default_storage.save(f"stories/{now:%Y/%m/%d}/{story.id}{sniffed.extension}", stored)
        story.media.name = saved_name
    try:
        with transaction.atomic():
            story.full_clean(exclude=["media", "author"])
            story.save(force_insert=True)
            _bump_authors(author_id)
            transaction.on_commit(lambda: signals.story_created.send(
                sender=Story, story_id=story.pk, author_id=story.author_id, visibility=str(story.visibility)))
    except BaseException:
        media.delete_media([saved_name])  # stored nowhere if the row is not
        raise
    return story


def delete_story(*, user_id, story_id) -> None:
    """The author deletes their story (404 for anyone who cannot see it, 403 for others)."""
    if selectors.visible_story(user_id, story_id) is None:
        raise Http404
    with transaction.atomic():
        story = Story.objects.select_for_update().filter(pk=story_id).first()
        if story is None:
            raise Http404
        if str(story.author_id) != str(user_id):
            raise PermissionDenied("Only the author can delete a story.")
        _remove(story)


def _remove(story: Story) -> None:
    name = story.media.name if story.media else ""
    author = story.author_id
    story.delete()
    _bump_authors(author)
    _delete_media_on_commit([name])


def remove_stories(story_ids, *, staff_user_id=None) -> int:
    """Staff remove stories (admin); open reports on them are resolved."""
    with transaction.atomic():
        stories = list(Story.objects.select_for_update().filter(pk__in=list(story_ids)))
        StoryReport.objects.filter(story__in=stories, status=StoryReportStatus.OPEN).update(
            status=StoryReportStatus.RESOLVED, resolved_at=timezone.now(), resolved_by_id=staff_user_id)
        for story in stories:
            _remove(story)
    return len(stories)


def resolve_reports(report_ids, *, staff_user_id, status: str) -> int:
    """Close reports: ``resolved`` removes their stories, ``dismissed`` keeps them."""
    if status not in (StoryReportStatus.RESOLVED, StoryReportStatus.DISMISSED):
        raise ValueError(status)
    with transaction.atomic():
        reports = StoryReport.objects.select_for_update().filter(pk__in=list(report_ids),
                                                                 status=StoryReportStatus.OPEN)
        story_ids = [r.story_id for r in reports if r.story_id]
        count = reports.update(status=status, resolved_at=timezone.now(), resolved_by_id=staff_user_id)
        if status == StoryReportStatus.RESOLVED and story_ids:
            remove_stories(story_ids, staff_user_id=staff_user_id)
    return count


def report_story(reporter_id, story_id, reason: str, details: str = "") -> dict:
    """Report a story the reporter can see (one open report per reporter and story)."""
    if reason not in StoryReportReason.values:
        raise ValidationError({"reason": [f"Must be one of: {', '.join(StoryReportReason.values)}."]})
    visible = selectors.visible_story(reporter_id, story_id)
    if visible is None:
        raise Http404
    if str(visible["author_id"]) == str(reporter_id):
        raise ValidationError({"story_id": ["You cannot report your own story."]})
    excerpt = (visible["text"] or visible["caption"] or "")[:300]
    try:
        with transaction.atomic():
            report = StoryReport.objects.create(
                story_id=visible["id"], story_author_id=visible["author_id"], story_excerpt=excerpt,
                reporter_id=reporter_id, reason=reason, details=(details or "")[:2000])
    except IntegrityError:
        report = StoryReport.objects.get(story_id=visible["id"], reporter_id=reporter_id,
                                         status=StoryReportStatus.OPEN)
    return {"id": str(report.id), "story_id": str(visible["id"]), "reason": report.reason,
            "status": report.status, "created_at": report.created_at}


# ---------------------------------------------------------------------- close friends


def add_close_friend(*, author_id, friend_id) -> bool:
    """Put a connection on one's close-friends list (idempotent; only connections qualify)."""
    try:
        friend = uuid.UUID(str(friend_id))
    except (TypeError, ValueError, AttributeError):
        raise ValidationError({"user_id": ["Must be a user id."]})
    if not connection_selectors.are_connected(author_id, friend):
        raise Http404
    _, created = CloseFriend.objects.get_or_create(author_id=author_id, friend_id=friend)
    _bump_authors(author_id)
    return created


def remove_close_friend(*, author_id, friend_id) -> bool:
    try:
        friend = uuid.UUID(str(friend_id))
    except (TypeError, ValueError, AttributeError):
        raise Http404
    deleted, _ = CloseFriend.objects.filter(author_id=author_id, friend_id=friend).delete()
    _bump_authors(author_id)
    return bool(deleted)


def drop_close_friends_between(a_id, b_id) -> None:
    """A connection ended (removal, block): neither stays on the other's list."""
    CloseFriend.objects.filter(Q(author_id=a_id, friend_id=b_id) | Q(author_id=b_id, friend_id=a_id)).delete()
    _bump_authors(a_id, b_id)


def erase_author(user_id) -> None:
    """The account is being erased: its media files go after commit (rows cascade with the user)."""
    names = list(Story.objects.filter(author_id=user_id).exclude(media="").values_list("media", flat=True))
    _delete_media_on_commit(names)
    others = CloseFriend.objects.filter(friend_id=user_id).values_list("author_id", flat=True)
    _bump_authors(user_id, *others)


# ------------------------------------------------------------------------------ sweep


def sweep_expired(now=None, dry_run: bool = False, progress=None) -> int:
    """Delete expired stories and their media in batches; returns how many (would) go.

    Expired stories are already invisible (every read filters ``expires_at > now``); the
    sweep frees storage and rows.  Reports keep their excerpt (their FK is set to null).
    """
    now = now or timezone.now()
    progress = progress or (lambda message: None)
    if dry_run:
        return Story.objects.filter(expires_at__lte=now).count()
    total = 0
    while True:
        with transaction.atomic():
            batch = list(Story.objects.select_for_update(skip_locked=True).filter(expires_at__lte=now)
                         .order_by("expires_at").values_list("id", "author_id", "media")[:SWEEP_BATCH])
            if not batch:
                break
            Story.objects.filter(pk__in=[sid for sid, _a, _m in batch]).delete()
            _bump_authors(*{author for _s, author, _m in batch})
            _delete_media_on_commit([name for _s, _a, name in batch])
        total += len(batch)
        progress(f"stories: {total} expired deleted")
    return total

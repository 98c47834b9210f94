"""GraphQL types and resolvers of accounts: ``me``, ``user(id)`` and the ``block`` mutation.

Thin, like the REST views beside it: visibility comes from ``accounts.visibility`` and the
profiles from ``accounts.selectors`` (cached); writes go through ``accounts.services``.
Composed into the schema by config/graphql.py; design: docs/subsystems/graphql.md.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from django.http import Http404

from accounts import selectors, services
from accounts.api import serializers as s
from accounts.authentication import load_user_for_cached_answer
from accounts.visibility import can_view_profile
from core.api import graphql as gql


@strawberry.type(description="What anyone allowed to see a user sees (never a phone number).")
class PublicProfile:
    id: strawberry.ID
    display_name: str
    bio: str
    avatar_url: str | None
    is_verified: bool


def profile_out(entry: dict) -> PublicProfile:
    """A ``selectors.get_public_profiles`` entry as a GraphQL object."""
    return PublicProfile(id=entry["id"], display_name=entry["display_name"], bio=entry["bio"],
                         avatar_url=entry["avatar_url"], is_verified=entry["is_verified"])


@strawberry.type(description="The signed-in user's own account (the only place their phone appears).")
class Me:
    id: strawberry.ID
    phone: str
    display_name: str
    bio: str
    avatar_url: str | None
    is_verified: bool
    ghost_mode: bool
    trust_level: str
    created_at: datetime


@strawberry.type
class BlockResult:
    blocked_user_id: strawberry.ID
    created: bool


def _me(info: strawberry.Info) -> Me | None:
    # Every change of the account bumps the profile's version (services.profile_changed), so a
    # whole answer cached with it (config/graphql.py) ends then; a deactivated or erased user is
    # UNAUTHENTICATED, as in REST.
    user = load_user_for_cached_answer(gql.viewer(info))
    return Me(id=strawberry.ID(str(user.pk)), phone=user.phone, display_name=user.display_name, bio=user.bio,
              avatar_url=selectors.avatar_url(user.avatar.name if user.avatar else ""),
              is_verified=user.is_verified, ghost_mode=user.ghost_mode,
              trust_level=user.get_trust_level_display(), created_at=user.created_at)


def _user(info: strawberry.Info, id: strawberry.ID) -> PublicProfile | None:
    viewer = gql.viewer(info)
    target = gql.parse_id(id)
    if not can_view_profile(viewer, target):
        raise Http404
    profile = selectors.get_public_profile(target)
    if profile is None:
        raise Http404
    return profile_out(profile)


@strawberry.type
class AccountsQuery:
    me: Me | None = strawberry.field(resolver=_me, description="The signed-in user (GET me/).")
    user: PublicProfile | None = strawberry.field(
        resolver=_user, description="A user's public profile, if you may see it (GET users/{id}/).")


@strawberry.type
class AccountsMutation:
    @strawberry.mutation(description="Block a user: each is hidden from the other at once (POST blocks/).")
    def block(self, info: strawberry.Info, user_id: strawberry.ID) -> BlockResult:
        me = gql.viewer_id(info)
        serializer = s.BlockCreateSerializer(data={"user_id": str(user_id)})
        serializer.is_valid(raise_exception=True)
        block, created = services.block_user(blocker_id=me, blocked_id=serializer.validated_data["user_id"])
        return BlockResult(blocked_user_id=strawberry.ID(str(block.blocked_id)), created=created)

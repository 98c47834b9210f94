"""Accounts API views: thin HTTP adapters over ``accounts.services`` and ``selectors``."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from accounts import report_targets, selectors, services
from accounts.api import serializers as s
from accounts.authentication import AnonymousEndpointAuthentication, load_user, load_user_for_cached_answer
from accounts.models import Block, User
from accounts.throttling import (
    PhoneCodeRateThrottle,
    PhoneRateThrottle,
    UserPhoneAttemptThrottle,
    UserPhoneRateThrottle,
)
from accounts.tokens import InvalidToken
from accounts.visibility import can_view_profile, profile_reads
from core.api.client_ip import client_ip
from core.api.http import conditional_json
from core.api.rest import Conflict, OrjsonParser, PayloadTooLarge
from core.api.throttling import IPRateThrottle, UserRateThrottle
from core.cache import response as response_cache
from core.db import router as db_router

LOGIN_FAILED = "Phone number or password is incorrect."


def _client_ip(request) -> str | None:
    """The client's address behind NUM_PROXIES proxies, when it is one (core.api.client_ip)."""
    return client_ip(request)


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:256]


def _signed_in(request, user) -> None:
    """The request now acts for ``user``: its writes pin their next reads to the primary."""
    db_router.set_user(user.pk)


def _auth_body(user, access: str, refresh: str) -> dict:
    return {"user": s.me_out(user), "access": access, "refresh": refresh}


def _validated(serializer_class, request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class _AnonymousAuthView(generics.GenericAPIView):
    """Sign-up/in endpoints: no token needed (a stale one in the header is ignored)."""

    authentication_classes = (AnonymousEndpointAuthentication,)
    permission_classes = (AllowAny,)
    throttle_classes: tuple[type[BaseThrottle], ...] = (IPRateThrottle, PhoneRateThrottle)


# --------------------------------------------------------------------------- auth


class RegisterView(_AnonymousAuthView):
    """Always 202 with the same body once the input is valid: whether the number already has
    an account is told only to the number's owner, by SMS (docs/security.md)."""

    serializer_class = s.RegisterSerializer
    throttle_classes = (IPRateThrottle, PhoneRateThrottle, PhoneCodeRateThrottle)

    @extend_schema(auth=[], responses={202: s.RegistrationStartedSerializer})
    def post(self, request):
        data = _validated(s.RegisterSerializer, request)
        services.start_registration(**data)
        return Response({"detail": services.REGISTRATION_SENT,
                         "expires_in": int(settings.PHONE_CODE_TTL.total_seconds())},
                        status=status.HTTP_202_ACCEPTED)


class RegisterVerifyView(_AnonymousAuthView):
    """The code from the SMS creates the account (phone verified) and signs it in."""

    serializer_class = s.RegisterVerifySerializer

    @extend_schema(auth=[], responses={201: s.AuthResponseSerializer})
    def post(self, request):
        data = _validated(s.RegisterVerifySerializer, request)
        user = services.complete_registration(**data)
        _signed_in(request, user)
        _session, access, refresh = services.open_session(
            user, user_agent=_user_agent(request), ip=_client_ip(request)
        )
        return Response(_auth_body(user, access, refresh), status=status.HTTP_201_CREATED)


class LoginView(_AnonymousAuthView):
    serializer_class = s.LoginSerializer

    @extend_schema(auth=[], responses={200: s.AuthResponseSerializer, 401: None, 403: None})
    def post(self, request):
        data = _validated(s.LoginSerializer, request)
        user = services.authenticate_phone(data["phone"], data["password"])
        if user is None:
            raise AuthenticationFailed(LOGIN_FAILED)
        if not user.is_active:
            raise PermissionDenied("This account is deactivated.")
        _signed_in(request, user)
        _session, access, refresh = services.open_session(
            user, user_agent=_user_agent(request), ip=_client_ip(request)
        )
        return Response(_auth_body(user, access, refresh))


class RefreshView(_AnonymousAuthView):
    """Refresh tokens carry a MAC: forged ones are refused before any query, so no
    brute-force throttle is needed (one would hurt users behind a shared NAT)."""

    serializer_class = s.RefreshSerializer
    throttle_classes = ()

    @extend_schema(auth=[], responses={200: s.TokenPairSerializer, 401: None})
    def post(self, request):
        data = _validated(s.RefreshSerializer, request)
        try:
            access, refresh = services.rotate_refresh_token(data["refresh"])
        except InvalidToken as exc:
            raise AuthenticationFailed(str(exc)) from exc
        return Response({"access": access, "refresh": refresh})


class LogoutView(generics.GenericAPIView):
    serializer_class = s.EmptySerializer

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        services.revoke_session(request.auth.session_id, user_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionListView(generics.ListAPIView):
    serializer_class = s.SessionSerializer

    def get_queryset(self):
        return services.live_sessions(self.request.user.pk)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["current_session_id"] = getattr(self.request.auth, "session_id", None)
        return context


class SessionDetailView(generics.GenericAPIView):
    serializer_class = s.EmptySerializer

    @extend_schema(responses={204: None})
    def delete(self, request, session_id: uuid.UUID):
        parsed = s.parse_uuid(session_id)
        if parsed is None or not services.revoke_session(parsed, user_id=request.user.pk):
            raise Http404("No such session.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class PhoneCodeView(generics.GenericAPIView):
    serializer_class = s.EmptySerializer
    throttle_classes = (UserRateThrottle, IPRateThrottle, UserPhoneRateThrottle)

    @extend_schema(request=None, responses={202: s.PhoneCodeSentSerializer, 409: None})
    def post(self, request):
        _validated(s.EmptySerializer, request)
        try:
            code = services.send_phone_code(load_user(request.user))
        except services.PhoneAlreadyVerified as exc:
            raise Conflict("This phone number is already verified.") from exc
        return Response({"detail": "Code sent.", "expires_at": code.expires_at},
                        status=status.HTTP_202_ACCEPTED)


class PhoneVerifyView(generics.GenericAPIView):
    serializer_class = s.PhoneVerifySerializer
    throttle_classes = (UserRateThrottle, IPRateThrottle, UserPhoneAttemptThrottle)

    @extend_schema(responses={200: s.MeWrappedSerializer})
    def post(self, request):
        data = _validated(s.PhoneVerifySerializer, request)
        services.verify_phone_code(request.user.pk, data["code"])
        return Response({"user": s.me_out(User.objects.get(pk=request.user.pk))})


# ------------------------------------------------------------------------ profile


class MeView(generics.GenericAPIView):
    serializer_class = s.MeUpdateSerializer
    # The avatar is an upload: multipart here (JSON still works for the other fields).
    parser_classes = (OrjsonParser, MultiPartParser)
    # Multipart bodies hold the avatar; refuse anything far larger before parsing it.
    max_body_bytes = s.AVATAR_MAX_BYTES + 64 * 1024

    # core.cache.response: GET is served from the stored answer while the user's profile
    # version (``selectors.profile_key``) is unchanged; every write to the user's row bumps it
    # after commit (``services.profile_changed``, erasure's ``invalidate_profiles``).
    response_cache = True

    @extend_schema(responses={200: s.MeSerializer})
    def get(self, request):
        user = load_user_for_cached_answer(request.user)
        response_cache.cacheable(request)
        return Response(s.me_out(user))

    @extend_schema(request={"multipart/form-data": s.MeUpdateSerializer}, responses={200: s.MeSerializer})
    def patch(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > self.max_body_bytes:
            raise PayloadTooLarge()
        load_user(request.user)  # a deactivated or erased user gets a 401 here
        data = _validated(s.MeUpdateSerializer, request, partial=True)
        user = services.update_profile(request.user.pk, **data)
        return Response(s.me_out(user))

    @extend_schema(responses={204: None})
    def delete(self, request):
        try:
            services.erase_own_account(request.user.pk)
        except services.AccountDeactivated as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserDetailView(generics.GenericAPIView):
    serializer_class = s.PublicProfileSerializer
    response_cache = True  # core.cache.response: visibility and profile come from cached reads

    def get(self, request, user_id: uuid.UUID):
        target = s.parse_uuid(user_id)
        if target is None:
            raise Http404("No such user.")
        with profile_reads(request.user, target):  # the reads below in one Redis round trip
            if not can_view_profile(request.user, target):
                raise Http404("No such user.")
            profile = selectors.get_public_profile(target)
        if profile is None:
            raise Http404("No such user.")
        response_cache.cacheable(request)
        return conditional_json(request, profile)


# ------------------------------------------------------------------------- blocks


class BlockListCreateView(generics.ListCreateAPIView):
    serializer_class = s.BlockSerializer

    def get_queryset(self):
        return Block.objects.filter(blocker_id=self.request.user.pk)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset().only("blocked_id", "created_at"))
        return self.get_paginated_response(s.BlockSerializer(page, many=True).data)

    @extend_schema(request=s.BlockCreateSerializer, responses={201: s.BlockSerializer, 200: s.BlockSerializer})
    def post(self, request):
        data = _validated(s.BlockCreateSerializer, request)
        block, created = services.block_user(blocker_id=request.user.pk, blocked_id=data["user_id"])
        body = s.BlockSerializer(block).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class BlockDeleteView(generics.GenericAPIView):
    serializer_class = s.EmptySerializer

    @extend_schema(responses={204: None})
    def delete(self, request, user_id: uuid.UUID):
        target = s.parse_uuid(user_id)
        if target is None or not services.unblock_user(blocker_id=request.user.pk, blocked_id=target):
            raise Http404("You have not blocked this user.")
        return Response(status=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------------ reports


class ReportCreateView(generics.GenericAPIView):
    serializer_class = s.ReportCreateSerializer

    @extend_schema(
        description="Report a user (`user_id`) or another kind of target such as a story (`story_id`), "
                    "each with its own reasons.",
        request=PolymorphicProxySerializer(
            component_name="ReportCreate", resource_type_field_name=None,
            serializers=lambda: [s.UserReportIn, *(pair[0] for pair in report_targets.schemas().values())]),
        responses={
            201: PolymorphicProxySerializer(
                component_name="ReportCreated", resource_type_field_name=None,
                serializers=lambda: [s.UserReportSerializer, *(pair[1] for pair in report_targets.schemas().values())]),
            200: s.UserReportSerializer,
        },
    )
    def post(self, request):
        data = _validated(s.ReportCreateSerializer, request)
        target = data["target"]
        if target != "user_id":
            handler = report_targets.handlers()[target]
            body = handler(request.user.pk, data[target], data["reason"], data.get("details", ""))
            return Response(body, status=status.HTTP_201_CREATED)
        report, created = services.report_user(
            reporter_id=request.user.pk, reported_id=data["user_id"],
            reason=data["reason"], details=data.get("details", ""),
        )
        return Response(s.UserReportSerializer(report).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

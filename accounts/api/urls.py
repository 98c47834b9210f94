"""Accounts endpoints, all under /api/v1/ (docs/api.md)."""

from django.urls import path

from accounts.api import views

urlpatterns = [
    path("auth/register/", views.RegisterView.as_view(), name="auth-register"),
    path("auth/register/verify/", views.RegisterVerifyView.as_view(), name="auth-register-verify"),
    path("auth/login/", views.LoginView.as_view(), name="auth-login"),
    path("auth/refresh/", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/sessions/", views.SessionListView.as_view(), name="auth-sessions"),
    path("auth/sessions/<uuid:session_id>/", views.SessionDetailView.as_view(), name="auth-session"),
    path("auth/phone/code/", views.PhoneCodeView.as_view(), name="auth-phone-code"),
    path("auth/phone/verify/", views.PhoneVerifyView.as_view(), name="auth-phone-verify"),
    path("me/", views.MeView.as_view(), name="me"),
    path("users/<uuid:user_id>/", views.UserDetailView.as_view(), name="user-detail"),
    path("blocks/", views.BlockListCreateView.as_view(), name="blocks"),
    path("blocks/<uuid:user_id>/", views.BlockDeleteView.as_view(), name="block-delete"),
    path("reports/", views.ReportCreateView.as_view(), name="reports"),
]

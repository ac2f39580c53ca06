"""Accounts routes under `/sfp/api` (published paths, no trailing slashes)."""

from django.urls import path

from apps.accounts.api import views

urlpatterns = [
    path("auth/admin/login", views.AdminLoginView.as_view(), name="auth-admin-login"),
    path("auth/refresh", views.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/callback", views.CallbackView.as_view(), name="auth-callback"),
    path("users", views.UsersView.as_view(), name="users"),
    path("users/me", views.MeView.as_view(), name="users-me"),
    path("users/<str:email>", views.UserDetailView.as_view(), name="user-detail"),
    path("teams", views.TeamsView.as_view(), name="teams"),
    path("teams/<slug:slug>", views.TeamDetailView.as_view(), name="team-detail"),
    path("teams/<slug:slug>/members", views.TeamMembersView.as_view(), name="team-members"),
    path(
        "teams/<slug:slug>/members/<str:email>",
        views.TeamMemberView.as_view(),
        name="team-member",
    ),
    path(
        "teams/<slug:slug>/members/<str:email>/role",
        views.TeamMemberRoleView.as_view(),
        name="team-member-role",
    ),
    path("application-tokens", views.ApplicationTokensView.as_view(), name="app-tokens"),
    path(
        "application-tokens/<str:token_id>",
        views.ApplicationTokenView.as_view(),
        name="app-token-detail",
    ),
    path("audit", views.AuditView.as_view(), name="audit"),
]

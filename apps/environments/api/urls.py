"""Environments routes under `/sfp/api` (the org registry's published paths)."""

from django.urls import path

from apps.environments.api import views

urlpatterns = [
    path("auth/salesforce/register", views.RegisterOrgView.as_view(), name="org-register"),
    path("auth/salesforce/orgs", views.OrgsView.as_view(), name="orgs"),
    path("auth/salesforce/org", views.OrgView.as_view(), name="org"),
    path(
        "auth/salesforce/test-connection",
        views.TestConnectionView.as_view(),
        name="org-test-connection",
    ),
    path("environments", views.EnvironmentsView.as_view(), name="environments"),
    path(
        "environments/orchestration-order",
        views.OrchestrationOrderView.as_view(),
        name="environments-orchestration-order",
    ),
    path("environments/<uuid:environment_id>", views.EnvironmentView.as_view(), name="environment"),
    path(
        "environments/<uuid:environment_id>/metadata",
        views.EnvironmentMetadataView.as_view(),
        name="environment-metadata",
    ),
    path(
        "environments/<uuid:environment_id>/lock",
        views.EnvironmentLockView.as_view(),
        name="environment-lock",
    ),
    path(
        "environments/<uuid:environment_id>/unlock",
        views.EnvironmentUnlockView.as_view(),
        name="environment-unlock",
    ),
    path(
        "environments/<uuid:environment_id>/credentials",
        views.EnvironmentCredentialsView.as_view(),
        name="environment-credentials",
    ),
    path("locks", views.LocksView.as_view(), name="locks"),
    # Repository identifiers contain "/": the ticket route (with its UUID) is tried first.
    path(
        "locks/<path:repository>/<str:resource>/<uuid:ticket_id>",
        views.LockTicketView.as_view(),
        name="lock-ticket",
    ),
    path(
        "locks/<path:repository>/<str:resource>",
        views.ResourceLocksView.as_view(),
        name="resource-locks",
    ),
]

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

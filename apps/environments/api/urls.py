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
]

"""Routes of the environments app under `/sfp/api`: the org registry, environments, locks."""

from django.urls import path

from apps.environments.api import environments, locks, orgs

urlpatterns = [
    path("auth/salesforce/register", orgs.RegisterOrgView.as_view(), name="org-register"),
    path("auth/salesforce/orgs", orgs.OrgsView.as_view(), name="orgs"),
    path("auth/salesforce/org", orgs.OrgView.as_view(), name="org"),
    path(
        "auth/salesforce/test-connection",
        orgs.TestConnectionView.as_view(),
        name="org-test-connection",
    ),
    path("environments", environments.EnvironmentsView.as_view(), name="environments"),
    path(
        "environments/lock-any",
        environments.EnvironmentLockAnyView.as_view(),
        name="environments-lock-any",
    ),
    path(
        "environments/orchestration-order",
        environments.OrchestrationOrderView.as_view(),
        name="environments-orchestration-order",
    ),
    path(
        "environments/<uuid:environment_id>",
        environments.EnvironmentView.as_view(),
        name="environment",
    ),
    path(
        "environments/<uuid:environment_id>/metadata",
        environments.EnvironmentMetadataView.as_view(),
        name="environment-metadata",
    ),
    path(
        "environments/<uuid:environment_id>/lock",
        environments.EnvironmentLockView.as_view(),
        name="environment-lock",
    ),
    path(
        "environments/<uuid:environment_id>/unlock",
        environments.EnvironmentUnlockView.as_view(),
        name="environment-unlock",
    ),
    path(
        "environments/<uuid:environment_id>/credentials",
        environments.EnvironmentCredentialsView.as_view(),
        name="environment-credentials",
    ),
    path("locks", locks.LocksView.as_view(), name="locks"),
    path("locks/requests/<uuid:request_id>", locks.LockRequestView.as_view(), name="lock-request"),
    path(
        "locks/<path:repository>/<str:resource>/<uuid:ticket_id>/extend",
        locks.LockExtendView.as_view(),
        name="lock-extend",
    ),
    # Repository identifiers contain "/": the ticket route (with its UUID) is tried first.
    path(
        "locks/<path:repository>/<str:resource>/<uuid:ticket_id>",
        locks.LockTicketView.as_view(),
        name="lock-ticket",
    ),
    path(
        "locks/<path:repository>/<str:resource>",
        locks.ResourceLocksView.as_view(),
        name="resource-locks",
    ),
]

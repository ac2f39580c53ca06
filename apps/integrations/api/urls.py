"""Integrations routes under `/sfp/api`."""

from django.urls import path

from apps.integrations.api import views

urlpatterns = [
    path("integrations", views.IntegrationsView.as_view(), name="integrations"),
    path(
        "integrations/credentials",
        views.IntegrationCredentialsView.as_view(),
        name="integration-credentials",
    ),
    path(
        "integrations/<uuid:integration_id>",
        views.IntegrationDetailView.as_view(),
        name="integration-detail",
    ),
    path(
        "integrations/<uuid:integration_id>/test-connection",
        views.IntegrationTestConnectionView.as_view(),
        name="integration-test-connection",
    ),
    path(
        "flows/internal/credential-grants/<uuid:grant_id>/redeem",
        views.GrantRedeemView.as_view(),
        name="credential-grant-redeem",
    ),
]

"""Repository routes under `/sfp/api` (published paths, plus the deliveries listing)."""

from django.urls import path

from apps.builds.api import views

urlpatterns = [
    path("repository/webhook", views.GitHubWebhookView.as_view(), name="repository-webhook"),
    path(
        "repository/webhook/azuredevops",
        views.AzureDevOpsWebhookView.as_view(),
        name="repository-webhook-azuredevops",
    ),
    path(
        "repository/webhook-deliveries",
        views.WebhookDeliveriesView.as_view(),
        name="repository-webhook-deliveries",
    ),
    path(
        "repository/auth-token",
        views.RepositoryAuthTokenView.as_view(),
        name="repository-auth-token",
    ),
]

"""Root URL map: the API under `/sfp/api`, its OpenAPI document, health, metrics, the admin, and
the dashboard at `/` (last, so it never shadows a route above).

Routes have no trailing slash, as in the published API.
"""

from django.contrib import admin
from django.urls import include, path

from apps.accounts.sso import urls as sso_urls
from apps.core.api.views import ApiDocsView, DirectHealthView, HealthView, OpenApiDocumentView
from apps.core.metrics import metrics_view

api_patterns = [
    path("", include("apps.core.api.urls")),
    path("", include("apps.accounts.api.urls")),
    path("", include(sso_urls.api_patterns)),
    path("", include("apps.integrations.api.urls")),
    path("", include("apps.projects.api.urls")),
    path("", include("apps.environments.api.urls")),
    path("", include("apps.tasks.api.urls")),
]

urlpatterns = [
    path("sfp/api", HealthView.as_view(), name="api-root-health"),
    path("sfp/api/", include(api_patterns)),
    path("sfp/apidocs-json", OpenApiDocumentView.as_view(), name="openapi-schema"),
    path("sfp/apidocs", ApiDocsView.as_view(url_name="openapi-schema"), name="apidocs"),
    path("auth/v1/sso/saml/", include(sso_urls.saml_patterns)),
    path("health", DirectHealthView.as_view(), name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("", include("apps.dashboard.urls")),
]

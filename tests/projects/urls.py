"""The real URL map plus the projects routes under `/sfp/api/`, for tests that run before the
projects include is added to `sfpserver/urls.py` (harmless after: the first match wins)."""

from django.urls import include, path

urlpatterns = [
    path("sfp/api/", include("apps.projects.api.urls")),
    path("", include("sfpserver.urls")),
]

"""Projects routes under `/sfp/api`.

Identifiers contain '/', which clients send URL-encoded (`acme%2Fapp`). Django decodes `%2F`
before routing, so the detail route takes a `path` converter and both spellings reach it.
"""

from django.urls import path

from apps.projects.api import views

urlpatterns = [
    path("projects", views.ProjectsView.as_view(), name="projects"),
    path("projects/<path:identifier>", views.ProjectDetailView.as_view(), name="project-detail"),
]

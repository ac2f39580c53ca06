"""Core routes under `/sfp/api`."""

from django.urls import path

from apps.core.api.views import PingView

urlpatterns = [
    path("ping", PingView.as_view(), name="ping"),
]

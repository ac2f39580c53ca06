"""App config for builds: webhooks, deliveries, routing and the repository API."""

from django.apps import AppConfig


class BuildsConfig(AppConfig):
    name = "apps.builds"
    label = "builds"
    default_auto_field = "django.db.models.BigAutoField"

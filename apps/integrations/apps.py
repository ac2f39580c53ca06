"""Django app configuration for `apps.integrations`."""

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    label = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from apps.integrations import grants  # noqa: F401 - registers the integration resolver

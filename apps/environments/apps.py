"""Django app configuration for `apps.environments`."""

from django.apps import AppConfig


class EnvironmentsConfig(AppConfig):
    name = "apps.environments"
    label = "environments"
    verbose_name = "Environments"

    def ready(self) -> None:
        from apps.environments.services.orgs import resolve_org_credentials
        from apps.integrations.grants import register_resolver

        register_resolver("salesforce_org", resolve_org_credentials)

"""Django app configuration for `apps.tasks`."""

from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "apps.tasks"
    label = "tasks"
    verbose_name = "Tasks"

    def ready(self) -> None:
        from apps.environments.services.locks import on_grant
        from apps.tasks.lifecycle import wake_parked

        on_grant(lambda ticket: wake_parked(ticket.holder_operation_id))

        from apps.core.health import register_summary
        from apps.core.metrics import register_scrape_collector
        from apps.tasks.metrics import HeartbeatCollector, QueueDepthCollector, workers_health

        register_scrape_collector(HeartbeatCollector())
        register_scrape_collector(QueueDepthCollector())
        register_summary("workers", workers_health)

"""Tasks and logs routes under `/sfp/api`."""

from django.urls import path

from apps.tasks.api import views

urlpatterns = [
    path("tasks", views.TasksView.as_view(), name="tasks"),
    path("tasks/<str:operation_id>", views.TaskView.as_view(), name="task"),
    path("tasks/<str:operation_id>/status", views.TaskStatusView.as_view(), name="task-status"),
    path("tasks/<str:operation_id>/result", views.TaskResultView.as_view(), name="task-result"),
    path(
        "tasks/<str:operation_id>/stop-recurring",
        views.StopRecurringView.as_view(),
        name="task-stop-recurring",
    ),
    path(
        "tasks/<str:operation_id>/recurring-instances",
        views.RecurringInstancesView.as_view(),
        name="task-recurring-instances",
    ),
    path("logs/<str:operation_id>", views.LogsView.as_view(), name="logs"),
    path("pipelines", views.PipelinesView.as_view(), name="pipelines"),
    path("pipelines/<str:operation_id>", views.PipelineView.as_view(), name="pipeline"),
    path(
        "pipelines/<str:operation_id>/approve",
        views.PipelineApproveView.as_view(),
        name="pipeline-approve",
    ),
    path(
        "pipelines/<str:operation_id>/reject",
        views.PipelineRejectView.as_view(),
        name="pipeline-reject",
    ),
    path(
        "pipelines/<str:operation_id>/retry",
        views.PipelineRetryView.as_view(),
        name="pipeline-retry",
    ),
]

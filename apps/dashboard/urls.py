"""The dashboard's routes, mounted at the site root after every other route.

`fragments/…` answer pieces of the pages (table rows, the lock board, the pipelines list) that the
page scripts fetch to add a row or catch up after (re)subscribing, without reloading the page.
"""

from django.urls import path

from apps.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("login", views.login_view, name="login"),
    path("logout", views.logout_view, name="logout"),
    path("tasks", views.task_history, name="history"),
    path("tasks/<str:operation_id>", views.task_detail, name="task"),
    path("tasks/<str:operation_id>/cancel", views.task_cancel_view, name="cancel"),
    path("locks", views.lock_board, name="locks"),
    path("locks/release", views.lock_release_view, name="release-lock"),
    path("pipelines", views.pipeline_list, name="pipelines"),
    path("pipelines/<str:operation_id>/decide", views.pipeline_decide_view, name="decide"),
    path("pipelines/<str:operation_id>/retry", views.pipeline_retry_view, name="retry"),
    path("fragments/tasks", views.task_rows_fragment, name="task-rows"),
    path("fragments/tasks/<str:operation_id>", views.task_row_fragment, name="task-row"),
    path(
        "fragments/tasks/<str:operation_id>/summary",
        views.task_summary_fragment,
        name="task-summary",
    ),
    path("fragments/locks", views.lock_board_fragment, name="lock-board"),
    path("fragments/pipelines", views.pipelines_fragment, name="pipeline-list"),
]

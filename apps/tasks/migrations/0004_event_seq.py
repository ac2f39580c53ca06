"""Live-event sequence numbers per execution; existing executions continue after their last log
line, so a client's `since` stays meaningful across the upgrade."""

from django.db import migrations, models
from django.db.models import Max, OuterRef, Subquery


def continue_after_log_lines(apps, schema_editor):
    TaskExecution = apps.get_model("tasks", "TaskExecution")
    TaskLogLine = apps.get_model("tasks", "TaskLogLine")
    last_line = (
        TaskLogLine.objects.filter(execution=OuterRef("pk"))
        .values("execution")
        .annotate(last=Max("seq"))
        .values("last")
    )
    TaskExecution.objects.filter(log_lines__isnull=False).update(event_seq=Subquery(last_line))


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0003_pipeline_step"),
    ]

    operations = [
        migrations.AddField(
            model_name="taskexecution",
            name="event_seq",
            field=models.PositiveBigIntegerField(
                default=0,
                help_text="The last live-event sequence number of this execution (log lines share it).",
            ),
        ),
        migrations.RunPython(continue_after_log_lines, migrations.RunPython.noop),
    ]

"""Priority becomes the integer the claim orders by (low 0, medium 10, high 20, critical 30),
with a partial index in claim order; existing names are converted (unknown ones become low)."""

from django.db import migrations, models

VALUES = {"low": 0, "medium": 10, "high": 20, "critical": 30}


def names_to_values(apps, schema_editor):
    TaskExecution = apps.get_model("tasks", "TaskExecution")
    for name, value in VALUES.items():
        TaskExecution.objects.filter(priority=name).update(priority_value=value)


def values_to_names(apps, schema_editor):
    TaskExecution = apps.get_model("tasks", "TaskExecution")
    for name, value in VALUES.items():
        TaskExecution.objects.filter(priority_value=value).update(priority=name)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0007_attempt_rows")]

    operations = [
        migrations.AddField(
            model_name="taskexecution",
            name="priority_value",
            field=models.SmallIntegerField(default=0),
        ),
        migrations.RunPython(names_to_values, values_to_names),
        migrations.RemoveField(model_name="taskexecution", name="priority"),
        migrations.RenameField(
            model_name="taskexecution", old_name="priority_value", new_name="priority"
        ),
        migrations.AlterField(
            model_name="taskexecution",
            name="priority",
            field=models.SmallIntegerField(
                choices=[(0, "low"), (10, "medium"), (20, "high"), (30, "critical")], default=0
            ),
        ),
        migrations.AddIndex(
            model_name="taskexecution",
            index=models.Index(
                condition=models.Q(("cancel_requested", False), ("status", "pending")),
                fields=["pool", "-priority", "available_at"],
                name="tasks_claim_order",
            ),
        ),
    ]

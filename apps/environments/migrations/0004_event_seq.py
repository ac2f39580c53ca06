"""Live-event sequence numbers per lock resource."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('environments', '0003_environments'),
    ]

    operations = [
        migrations.AddField(
            model_name='lockresource',
            name='event_seq',
            field=models.PositiveBigIntegerField(default=0, help_text="The last live-event sequence number of this resource's lock."),
        ),
    ]

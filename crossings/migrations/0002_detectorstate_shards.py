from django.db import migrations, models


class Migration(migrations.Migration):
    """Detection shards: each watermark row knows the CROSSING_SHARDS it was made for."""

    dependencies = [
        ("crossings", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="detectorstate",
            name="shards",
            field=models.PositiveSmallIntegerField(default=1, help_text="CROSSING_SHARDS this watermark belongs to."),
        ),
    ]

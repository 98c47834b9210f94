from django.db import migrations, models


class Migration(migrations.Migration):
    """Former circles of edited cities, for sharded detection (docs/subsystems/detection.md, "Shards")."""

    dependencies = [
        ("crossings", "0002_detectorstate_shards"),
    ]

    operations = [
        migrations.CreateModel(
            name="CityArea",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("city_id", models.IntegerField()),
                ("lat", models.FloatField()),
                ("lng", models.FloatField()),
                ("radius_km", models.FloatField()),
                ("kept_until", models.DateTimeField()),
            ],
            options={
                "db_table": "crossings_city_area",
            },
        ),
    ]

"""Per-city activity of the last 24 hours: pings received and crossings made.

A separate view because it is the slow aggregate (it reads a day of pings, partition by
partition, through the (city_id, recorded_at, id) primary key); its unique index on
``city_id`` lets it refresh concurrently like user_stats_mv.
"""

from django.db import migrations, models

CITY_STATS_SQL = """
CREATE MATERIALIZED VIEW city_stats_mv AS
SELECT
    c.id AS city_id,
    c.slug,
    c.name,
    COALESCE(p.pings_24h, 0) AS pings_24h,
    COALESCE(x.crossings_24h, 0) AS crossings_24h,
    now() AS refreshed_at
FROM locations_city c
LEFT JOIN (
    SELECT city_id, count(*) AS pings_24h
    FROM locations_ping
    WHERE recorded_at > now() - interval '24 hours'
    GROUP BY city_id
) p ON p.city_id = c.id
LEFT JOIN (
    SELECT city_id, count(*) AS crossings_24h
    FROM crossings
    WHERE last_crossed_at > now() - interval '24 hours'
    GROUP BY city_id
) x ON x.city_id = c.id;
CREATE UNIQUE INDEX city_stats_mv_city_id ON city_stats_mv (city_id);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_user_stats_mv"),
        ("locations", "0001_initial"),
        ("crossings", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            CITY_STATS_SQL,
            reverse_sql="DROP MATERIALIZED VIEW IF EXISTS city_stats_mv;",
            state_operations=[
                migrations.CreateModel(
                    name="CityStats",
                    fields=[
                        ("city_id", models.IntegerField(primary_key=True, serialize=False)),
                        ("slug", models.CharField(max_length=50)),
                        ("name", models.CharField(max_length=100)),
                        ("pings_24h", models.BigIntegerField()),
                        ("crossings_24h", models.BigIntegerField()),
                        ("refreshed_at", models.DateTimeField()),
                    ],
                    options={"db_table": "city_stats_mv", "managed": False, "ordering": ["slug"],
                             "verbose_name": "city statistics", "verbose_name_plural": "city statistics"},
                ),
            ],
        ),
    ]

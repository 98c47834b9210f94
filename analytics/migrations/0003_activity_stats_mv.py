"""Site-wide social activity: crossings, connections, messages and live stories.

One row (id = 1), like user_stats_mv, so that it refreshes concurrently; separate from it
because counting a day of messages is the slow part and belongs with the other tables' figures.
"""

from django.db import migrations, models

ACTIVITY_STATS_SQL = """
CREATE MATERIALIZED VIEW activity_stats_mv AS
SELECT
    1 AS id,
    (SELECT count(*) FROM crossings) AS crossings_total,
    (SELECT count(*) FROM connections WHERE status = 'accepted') AS connections_accepted,
    (SELECT count(*) FROM connections
      WHERE status = 'accepted' AND responded_at > now() - interval '24 hours') AS connections_made_24h,
    (SELECT count(*) FROM connections WHERE status = 'pending') AS connection_requests_pending,
    (SELECT count(*) FROM messages WHERE created_at > now() - interval '24 hours') AS messages_24h,
    (SELECT count(*) FROM stories WHERE expires_at > now()) AS stories_live,
    now() AS refreshed_at;
CREATE UNIQUE INDEX activity_stats_mv_id ON activity_stats_mv (id);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0002_city_stats_mv"),
        ("connections", "0001_initial"),
        ("stories", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            ACTIVITY_STATS_SQL,
            reverse_sql="DROP MATERIALIZED VIEW IF EXISTS activity_stats_mv;",
            state_operations=[
                migrations.CreateModel(
                    name="ActivityStats",
                    fields=[
                        ("id", models.IntegerField(primary_key=True, serialize=False)),
                        ("crossings_total", models.BigIntegerField()),
                        ("connections_accepted", models.BigIntegerField()),
                        ("connections_made_24h", models.BigIntegerField()),
                        ("connection_requests_pending", models.BigIntegerField()),
                        ("messages_24h", models.BigIntegerField()),
                        ("stories_live", models.BigIntegerField()),
                        ("refreshed_at", models.DateTimeField()),
                    ],
                    options={"db_table": "activity_stats_mv", "managed": False,
                             "verbose_name": "activity statistics", "verbose_name_plural": "activity statistics"},
                ),
            ],
        ),
    ]

"""The staff statistics, precomputed.

``user_stats_mv`` has one row (id = 1) so that its unique index, which
``REFRESH MATERIALIZED VIEW CONCURRENTLY`` needs, is stable; the plan's index on
``total_users`` would make two refreshes with the same count collide on nothing but
would break the moment two rows existed.  ``refreshed_at`` is stored in the view itself:
``now()`` is evaluated at refresh time.
"""

from django.db import migrations, models

USER_STATS_SQL = """
CREATE MATERIALIZED VIEW user_stats_mv AS
SELECT
    1 AS id,
    count(*) AS total_users,
    count(*) FILTER (WHERE created_at > now() - interval '24 hours') AS new_users_24h,
    count(*) FILTER (WHERE last_active_at > now() - interval '24 hours') AS active_users_24h,
    count(*) FILTER (WHERE is_verified) AS verified_users,
    now() AS refreshed_at
FROM users;
CREATE UNIQUE INDEX user_stats_mv_id ON user_stats_mv (id);
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.RunSQL(
            USER_STATS_SQL,
            reverse_sql="DROP MATERIALIZED VIEW IF EXISTS user_stats_mv;",
            state_operations=[
                migrations.CreateModel(
                    name="UserStats",
                    fields=[
                        ("id", models.IntegerField(primary_key=True, serialize=False)),
                        ("total_users", models.BigIntegerField()),
                        ("new_users_24h", models.BigIntegerField()),
                        ("active_users_24h", models.BigIntegerField()),
                        ("verified_users", models.BigIntegerField()),
                        ("refreshed_at", models.DateTimeField()),
                    ],
                    options={"db_table": "user_stats_mv", "managed": False, "verbose_name": "statistics",
                             "verbose_name_plural": "statistics"},
                ),
            ],
        ),
    ]

"""Statuses of the matchable-ping rules: unverified, late, fast and dense pings are stored but never matched.

Stored pings are relabelled by the rules that need no neighbour: pings of users whose phone is
not verified become UNVERIFIED, pings received more than CROSSING_LIVE_S after their time LATE.
"""

from django.conf import settings
from django.db import migrations, models

CHOICES = [(0, "matchable"), (1, "implausible"), (2, "ghost"), (3, "unverified"), (4, "late"), (5, "fast"),
           (6, "dense")]


def forwards_sql() -> str:
    return f"""
    ALTER TABLE locations_ping DROP CONSTRAINT locations_ping_status_valid;
    ALTER TABLE locations_ping ADD CONSTRAINT locations_ping_status_valid CHECK (status BETWEEN 0 AND 6);
    UPDATE locations_ping p SET status = 3 FROM users u
     WHERE p.status = 0 AND u.id = p.user_id AND NOT u.is_verified;
    UPDATE locations_ping SET status = 4
     WHERE status = 0 AND received_at > recorded_at + interval '{int(settings.CROSSING_LIVE_S)} seconds';
    """


BACKWARDS_SQL = """
UPDATE locations_ping SET status = 0 WHERE status IN (3, 4, 5, 6);
ALTER TABLE locations_ping DROP CONSTRAINT locations_ping_status_valid;
ALTER TABLE locations_ping ADD CONSTRAINT locations_ping_status_valid CHECK (status IN (0, 1, 2));
"""


class Migration(migrations.Migration):

    dependencies = [
        ("locations", "0002_recorded_at_brin"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(forwards_sql(), BACKWARDS_SQL)],
            state_operations=[migrations.AlterField(
                model_name="ping", name="status",
                field=models.SmallIntegerField(choices=CHOICES, default=0),
            )],
        ),
    ]

"""Leave room on each page of ``users`` so that the minute's ``last_active_at`` flush is a
HOT update (no index entries rewritten: the column is in no index), see
docs/benchmarks/accounts.md for the measured difference."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_display_name_prefix_index")]

    operations = [
        migrations.RunSQL(
            sql="ALTER TABLE users SET (fillfactor = 85)",
            reverse_sql="ALTER TABLE users RESET (fillfactor)",
        ),
    ]

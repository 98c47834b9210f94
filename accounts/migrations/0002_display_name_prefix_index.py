"""Rebuild the display-name index with text_pattern_ops: LIKE 'PREFIX%' on upper(display_name)
then uses it whatever the database collation (with a non-C collation a plain B-tree cannot).

Django 5.2 renders OpClass on an expression index as ``((UPPER(x) ops))``, which PostgreSQL
refuses, so the SQL is written here; the model state keeps the plain expression index.
"""

from django.db import migrations

CREATE = (
    'CREATE INDEX IF NOT EXISTS "idx_users_display_name_upper" '
    'ON "users" ((UPPER("display_name")) text_pattern_ops)'
)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.RunSQL(
            sql=['DROP INDEX IF EXISTS "idx_users_display_name_upper"', CREATE],
            reverse_sql=[
                'DROP INDEX IF EXISTS "idx_users_display_name_upper"',
                'CREATE INDEX "idx_users_display_name_upper" ON "users" ((UPPER("display_name")))',
            ],
        ),
    ]

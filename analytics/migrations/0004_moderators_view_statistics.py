"""Moderators see the statistics page (aggregate figures and activity charts, no person's
data): the view permission on statistics joins the moderators group (stories 0002).

Admins hold every permission (stories 0002); when that migration runs before analytics'
models exist, theirs are missing, so they are added here too."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def _view_statistics_and_groups(apps):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    analytics = Permission.objects.filter(content_type__app_label="analytics")
    return (analytics, analytics.filter(codename="view_userstats").first(),
            Group.objects.filter(name="moderators").first(), Group.objects.filter(name="admins").first())


def grant(apps, schema_editor):
    config = apps.get_app_config("analytics")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    analytics, view, moderators, admins = _view_statistics_and_groups(apps)
    if view is not None and moderators is not None:
        moderators.permissions.add(view)
    if admins is not None:
        admins.permissions.add(*analytics)


def revoke(apps, schema_editor):
    _analytics, view, moderators, _admins = _view_statistics_and_groups(apps)
    if view is not None and moderators is not None:
        moderators.permissions.remove(view)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_activity_stats_mv"),
        ("stories", "0002_staff_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]

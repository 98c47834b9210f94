"""Moderators see the statistics page (aggregate figures and activity charts, no person's
data): the view permission on statistics joins the moderators group (stories 0002).

Admins hold every permission (stories 0002); when that migration runs before analytics'
models exist, theirs are missing, so they are added here too."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    config = apps.get_app_config("analytics")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(content_type__app_label="analytics", codename="view_userstats").first()
    moderators = Group.objects.filter(name="moderators").first()
    if permission is not None and moderators is not None:
        moderators.permissions.add(permission)
    admins = Group.objects.filter(name="admins").first()
    if admins is not None:
        admins.permissions.add(*Permission.objects.filter(content_type__app_label="analytics"))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(content_type__app_label="analytics", codename="view_userstats").first()
    moderators = Group.objects.filter(name="moderators").first()
    if permission is not None and moderators is not None:
        moderators.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_activity_stats_mv"),
        ("stories", "0002_staff_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]

"""Staff roles as Django groups.

* moderators: handle reports and stories (view/change/delete stories, resolve story and
  user reports, view users) but cannot delete users or change permissions;
* admins: every permission that exists when this runs, deleting users included.

Permissions are normally created after migrations (post_migrate); they are created here
first so that the groups can be filled in the same run.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODERATOR_PERMISSIONS = [
    ("stories", "view_story"), ("stories", "change_story"), ("stories", "delete_story"),
    ("stories", "moderate_story"),
    ("stories", "view_storyreport"), ("stories", "change_storyreport"),
    ("accounts", "view_userreport"), ("accounts", "change_userreport"),
    ("accounts", "view_user"),
]


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    moderators, _ = Group.objects.get_or_create(name="moderators")
    for app_label, codename in MODERATOR_PERMISSIONS:
        permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if permission is not None:
            moderators.permissions.add(permission)
    admins, _ = Group.objects.get_or_create(name="admins")
    admins.permissions.set(Permission.objects.all())


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["moderators", "admins"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("stories", "0001_initial"),
        ("connections", "0001_initial"),
        ("accounts", "0002_display_name_prefix_index"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]

"""Create the five role groups with their permissions, and the integration system user."""

from django.conf import settings
from django.db import migrations


def create_roles_and_system_user(apps, schema_editor):
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    from apps.core.roles import sync_roles

    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, apps=global_apps)
    sync_roles(apps)

    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    User.objects.get_or_create(
        username=settings.SYSTEM_USERNAME,
        defaults={"first_name": "Integration", "last_name": "System", "password": "!", "is_active": True},
    )


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles_and_system_user, migrations.RunPython.noop)]

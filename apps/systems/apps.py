from django.apps import AppConfig


class SystemsConfig(AppConfig):
    name = "apps.systems"
    label = "systems"
    verbose_name = "Connected systems and ownership"

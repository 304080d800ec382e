from django.apps import AppConfig


class CanonicalConfig(AppConfig):
    name = "apps.canonical"
    label = "canonical"
    verbose_name = "Canonical business records"

from django.apps import AppConfig


class MappingConfig(AppConfig):
    name = "apps.mapping"
    label = "mapping"
    verbose_name = "Mappings and cross-references"

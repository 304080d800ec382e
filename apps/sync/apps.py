from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "apps.sync"
    label = "sync"
    verbose_name = "Sync ledger and workflows"

    def ready(self):
        from . import groups  # noqa: F401  (connects the signal that resolves a group when its last member closes)

from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "apps.demo.bench"
    label = "bench"
    verbose_name = "Benchmark floors"

    def ready(self):
        # The bench workflow registers itself on import, like the workflows of apps/sync/workflows/.
        from . import workflow  # noqa: F401

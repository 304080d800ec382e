"""The workflows. Each module registers its own with `apps.sync.registry.register`; the sync app imports them all
when Django starts (`apps.sync.registry.discover_workflows`), so nothing else needs to import this package."""

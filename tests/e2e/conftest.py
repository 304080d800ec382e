"""The demo firm, wired to the sandbox systems served by pytest's live server, with steps run inline."""

import pytest
from django.core.management import call_command

from apps.demo.environment import demo_environment_apply, demo_secrets_ensure
from apps.demo.scenario import World, resources_known_to_psa, sandbox_wire


@pytest.fixture
def world(live_server, transactional_db, settings, tmp_path, monkeypatch):
    settings.SYNC_BACKOFF_BASE_SECONDS = 0.3
    settings.SYNC_BACKOFF_CAP_SECONDS = 2
    values = demo_secrets_ensure(path=tmp_path / "secrets.env")
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    demo_environment_apply({}, environ=None)
    call_command("load_demo", force=True, verbosity=0)
    world = World(base_url=live_server.url, say=lambda *args: None)
    sandbox_wire(world.base_url)
    resources_known_to_psa()
    return world

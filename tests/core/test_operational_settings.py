"""Every operational setting is read from the environment and listed in .env.example."""

import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
NOT_OPERATIONAL = {"SIMPLE_HISTORY_ENABLED"}  # django-simple-history's own switch, for data migrations


# Settings built from other variables: FOUR_EYES from the kinds listed in FOUR_EYES_ON / FOUR_EYES_OFF.
BUILT_FROM = {"FOUR_EYES": {"FOUR_EYES_ON", "FOUR_EYES_OFF"}}


def documented() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    return names | {name for name, parts in BUILT_FROM.items() if parts <= names}


def read_by_the_code() -> set[str]:
    names = set()
    for path in (ROOT / "apps").rglob("*.py"):
        source = path.read_text()
        names |= set(re.findall(r'getattr\(settings, "([A-Z][A-Z0-9_]*)"', source))
        names |= set(re.findall(r'_setting\("([A-Z][A-Z0-9_]*)"', source))
    return names - NOT_OPERATIONAL


def test_every_setting_the_code_reads_when_used_is_listed_in_env_example():
    missing = sorted(read_by_the_code() - documented())
    assert missing == [], f"add these to .env.example and read them in settings.py: {missing}"


def test_the_lease_length_and_retry_timings_come_from_the_environment(tmp_path):
    probe = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'integration_console.settings'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.SYNC_LEASE_SECONDS, s.SYNC_BACKOFF_BASE_SECONDS, s.SYNC_BACKOFF_CAP_SECONDS, "
        "s.SYNC_REQUEUE_AFTER_SECONDS, s.INBOUND_BULK_CHUNK)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "1",
        "VAR_DIR": str(tmp_path),
        "SYNC_LEASE_SECONDS": "900",
        "SYNC_BACKOFF_BASE_SECONDS": "2.5",
        "SYNC_BACKOFF_CAP_SECONDS": "60",
        "SYNC_REQUEUE_AFTER_SECONDS": "30",
        "INBOUND_BULK_CHUNK": "250",
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["900", "2.5", "60.0", "30", "250"]

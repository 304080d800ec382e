"""Which payload keys carry rates and costs, as the source profiles know them.

A profile names them in two ways: its `sensitive` list (payload paths such as `record.rate_in_cents` that it does
not map but that hold a rate or a cost), and its command fields that map to a sensitive canonical field
(`bill_rate`, `cost_rate`: the path they read from). The last key of each path is hidden wherever a payload is
shown to someone without the rates permission; `apps.core.masking` asks this module through
`register_sensitive_keys` (done in `MappingConfig.ready`) and stays the one place that decides.
"""

import re
import time

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.core.masking import sensitive_fields_of_all_models

from .models import SourceProfile

_INDEX = re.compile(r"\[[^\]]*\]")


def path_key(path: str) -> str:
    """The key a path ends in: 'record.rate_in_cents' → 'rate_in_cents', 'lines[0].rate' → 'rate'."""
    text = path.strip()
    quoted = re.search(r"\[\s*[\"']([^\"']+)[\"']\s*\]$", text)
    if quoted:
        return quoted.group(1)
    return _INDEX.sub("", text).rsplit(".", 1)[-1].lstrip("$")


def _mapped_paths(fields: dict, sensitive: frozenset[str]):
    for name, mapping in (fields or {}).items():
        if isinstance(mapping, dict) and isinstance(mapping.get("fields"), dict):
            yield from _mapped_paths(mapping["fields"], sensitive)  # nested lines, e.g. new_rates
        if name not in sensitive:
            continue
        path = mapping.get("path") if isinstance(mapping, dict) else mapping
        for item in path if isinstance(path, list) else [path]:
            if isinstance(item, str) and item:
                yield item


def spec_sensitive_keys(spec: dict) -> set[str]:
    """The payload keys one profile spec says carry rates or costs."""
    if not isinstance(spec, dict):
        return set()
    sensitive = sensitive_fields_of_all_models()
    paths = [path for path in spec.get("sensitive") or [] if isinstance(path, str)]
    for command in spec.get("commands") or []:
        if isinstance(command, dict):
            paths.extend(_mapped_paths(command.get("fields"), sensitive))
    return {key for key in (path_key(path) for path in paths) if key}


# Read once and kept briefly: a page shows many payloads. A profile saved in this process clears it at once;
# other processes see a change within MEMO_SECONDS.
MEMO_SECONDS = 30
_memo: dict = {}


def profile_sensitive_keys() -> frozenset[str]:
    """The rate and cost keys every stored profile (the built-ins and the firm's own, all versions) declares or maps."""
    now = time.monotonic()
    if _memo.get("until", 0) > now:
        return _memo["keys"]
    keys = set()
    for spec in SourceProfile.objects.values_list("spec", flat=True):
        keys |= spec_sensitive_keys(spec)
    _memo.update(keys=frozenset(keys), until=now + MEMO_SECONDS)
    return _memo["keys"]


@receiver(post_save, sender=SourceProfile, dispatch_uid="mapping.masking.forget")
@receiver(post_delete, sender=SourceProfile, dispatch_uid="mapping.masking.forget_deleted")
def forget_profile_keys(**kwargs) -> None:
    _memo.clear()

"""The kinds of four-eyes change request and what each applies on approval: a registry without models.

Each app registers its kind from its AppConfig.ready, naming the service that applies it by dotted path;
the path is imported when a change request is approved, so an apps.py imports nothing that needs models.
"""

from dataclasses import dataclass

from django.utils.module_loading import import_string

RATE_CARD_VERSION = "rate_card_version"
OWNERSHIP_RULE = "ownership_rule"
SOURCE_PROFILE = "source_profile"
TRANSACTION_REPLAY_AMOUNT = "transaction_replay_amount"


@dataclass(frozen=True)
class ApprovalAction:
    """What a kind of change request does when approved, and who may approve it."""

    kind: str
    label: str
    permission: str  # "app_label.codename" the checker needs
    apply_path: str  # "module.function": apply(change_request, *, actor, reason) -> the applied record

    def apply(self, change_request, **kwargs):
        return import_string(self.apply_path)(change_request, **kwargs)


_REGISTRY: dict[str, ApprovalAction] = {}


def register(kind: str, *, label: str, permission: str, apply: str) -> None:
    """Register the action a kind of change request applies on approval (call from AppConfig.ready)."""
    _REGISTRY[kind] = ApprovalAction(kind=kind, label=label, permission=permission, apply_path=apply)


def registered_kinds() -> dict[str, ApprovalAction]:
    return dict(_REGISTRY)

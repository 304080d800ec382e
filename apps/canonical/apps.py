from django.apps import AppConfig

from apps.core.approval_actions import RATE_CARD_VERSION
from apps.core.approval_actions import register as register_approval


class CanonicalConfig(AppConfig):
    name = "apps.canonical"
    label = "canonical"
    verbose_name = "Canonical business records"

    def ready(self):
        register_approval(
            RATE_CARD_VERSION,
            label="Rate card version approval",
            permission="canonical.change_ratecardversion",
            apply="apps.canonical.services.rate_card_version_apply_approval",
        )

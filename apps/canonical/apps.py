from django.apps import AppConfig


class CanonicalConfig(AppConfig):
    name = "apps.canonical"
    label = "canonical"
    verbose_name = "Canonical business records"

    def ready(self):
        # Registered here because the approval action lives with the other services, which need the models.
        from apps.core import approvals

        from .services import rate_card_version_apply_approval

        approvals.register(
            approvals.RATE_CARD_VERSION,
            label="Rate card version approval",
            permission="canonical.change_ratecardversion",
            apply=rate_card_version_apply_approval,
        )

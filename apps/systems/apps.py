from django.apps import AppConfig


class SystemsConfig(AppConfig):
    name = "apps.systems"
    label = "systems"
    verbose_name = "Connected systems and ownership"

    def ready(self):
        # Registered here because the approval action lives with the other services, which need the models.
        from apps.core import approvals

        from .services import ownership_rule_apply_approval

        approvals.register(
            approvals.OWNERSHIP_RULE,
            label="Ownership rule change",
            permission="systems.change_ownershiprule",
            apply=ownership_rule_apply_approval,
        )

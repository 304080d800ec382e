from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "apps.sync"
    label = "sync"
    verbose_name = "Sync ledger and workflows"

    def ready(self):
        # Registered here because the approval action lives with the other services, which need the models.
        from apps.core import approvals

        from .services import transaction_replay_apply_approval

        approvals.register(
            approvals.TRANSACTION_REPLAY_AMOUNT,
            label="Re-run with edited amounts",
            permission="sync.change_transaction",
            apply=transaction_replay_apply_approval,
        )

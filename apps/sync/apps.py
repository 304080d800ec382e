from django.apps import AppConfig

from apps.core.approval_actions import TRANSACTION_REPLAY_AMOUNT
from apps.core.approval_actions import register as register_approval
from apps.inbound.signals import events_stored, pick_up_message


class SyncConfig(AppConfig):
    name = "apps.sync"
    label = "sync"
    verbose_name = "Sync ledger and workflows"

    def ready(self):
        # Imported here, not at the top: these modules import models, which do not exist before ready().
        from . import groups, intake, registry  # noqa: F401  (groups connects the signal that resolves a group)

        registry.discover_workflows()
        events_stored.connect(intake.hand_over_on_commit, dispatch_uid="sync.intake")
        pick_up_message.connect(intake.pick_up_row, dispatch_uid="sync.intake.row")
        register_approval(
            TRANSACTION_REPLAY_AMOUNT,
            label="Re-run with edited amounts",
            permission="sync.change_transaction",
            apply="apps.sync.services.transaction_replay_apply_approval",
        )

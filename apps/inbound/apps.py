from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save

# What a sender's deliveries are checked and split with is remembered (senders.py); a change to any of these
# forgets it. Named by label: Django resolves lazy senders once the models are loaded.
SENDER_MODELS = ("systems.ConnectedSystem", "systems.SigningSecret", "mapping.SourceProfile")


class InboundConfig(AppConfig):
    name = "apps.inbound"
    label = "inbound"
    verbose_name = "Inbound webhooks and events"

    def ready(self):
        from .senders import forget_senders  # senders.py reads models, which exist only from ready() on

        for label in SENDER_MODELS:
            for signal in (post_save, post_delete):
                signal.connect(forget_senders, sender=label, dispatch_uid=f"inbound.forget_senders.{label}")
        post_migrate.connect(forget_senders, dispatch_uid="inbound.forget_senders")

from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "apps.inbound"
    label = "inbound"
    verbose_name = "Inbound webhooks and events"

    def ready(self):
        from django.db.models.signals import post_delete, post_migrate, post_save

        from apps.mapping.models import SourceProfile
        from apps.systems.models import ConnectedSystem, SigningSecret

        from .senders import forget_senders

        # What a sender's deliveries are checked and split with is remembered (senders.py); a change forgets it.
        for model in (ConnectedSystem, SigningSecret, SourceProfile):
            for signal in (post_save, post_delete):
                signal.connect(forget_senders, sender=model, dispatch_uid=f"inbound.forget_senders.{model.__name__}")
        post_migrate.connect(forget_senders, dispatch_uid="inbound.forget_senders")

"""The system user recorded as "who" for writes made by tasks, commands and webhooks."""

from django.conf import settings
from django.contrib.auth import get_user_model


def system_user():
    """The integration system user (created on first use; cannot log in)."""
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=settings.SYSTEM_USERNAME,
        defaults={"first_name": "Integration", "last_name": "System", "is_active": True},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user

"""The system user recorded as "who" for writes made by tasks, commands and webhooks."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

# The system user as committed, per database and username: every webhook, task and step asks for it, and it
# never changes in normal operation. Only a row read outside a transaction is kept (a row created or read
# inside one could still be rolled back), and saving or deleting any user, or a flush/migrate, forgets it.
_remembered: dict[tuple[str, str], object] = {}


def system_user():
    """The integration system user (created on first use; cannot log in)."""
    key = (connection.settings_dict.get("NAME") or "", settings.SYSTEM_USERNAME)
    user = _remembered.get(key)
    if user is not None:
        return user
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=settings.SYSTEM_USERNAME,
        defaults={"first_name": "Integration", "last_name": "System", "is_active": True},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if not connection.in_atomic_block:
        _remembered[key] = user
    return user


def forget_system_user(**kwargs) -> None:
    """Signal receiver: a user changed, or the database was flushed or migrated; read the system user again."""
    _remembered.clear()

"""Shared reads of connected systems, signing secrets and ownership rules, with their relations loaded."""

from django.db.models import QuerySet

from . import secrets
from .models import ConnectedSystem, OwnershipRule, Route, SigningSecret


def connected_system_list() -> QuerySet[ConnectedSystem]:
    """Connected systems with their signing secrets (references only) loaded."""
    return ConnectedSystem.objects.prefetch_related("signing_secrets")


def signing_secret_list() -> QuerySet[SigningSecret]:
    """Signing secrets with their system."""
    return SigningSecret.objects.select_related("system")


def ownership_rule_list() -> QuerySet[OwnershipRule]:
    """Ownership rules with the owner and the systems granted create/update."""
    return OwnershipRule.objects.select_related("owner").prefetch_related("may_create", "may_update")


def route_list() -> QuerySet[Route]:
    """Routes with the system they choose."""
    return Route.objects.select_related("system")


def describe_credentials(credentials) -> str:
    """Outbound credentials as where they live, part by part; never a value (none are stored)."""
    if not credentials:
        return "No credentials"
    if len(credentials) == 1 and next(iter(credentials)) in secrets.REFERENCE_KINDS:
        return secrets.describe(credentials)
    return "; ".join(f"{part}: {secrets.describe(reference)}" for part, reference in sorted(credentials.items()))

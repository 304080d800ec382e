"""What tests, the demo and the admin do to the sandbox systems from Python: set faults, read the log, reset."""

from contextlib import contextmanager
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.context import audit_context, system_context
from apps.core.errors import BusinessError
from apps.core.history import save_if_changed

from .models import SandboxCall, SandboxIdempotencyKey, SandboxKind, SandboxRecord, SandboxSystem, SandboxWebhook
from .seeds import seed_reference_data
from .webhooks import webhooks_wait

KINDS = tuple(SandboxKind.values)

FAULT_DEFAULTS = {
    "latency_ms": 0,
    "requests_per_minute": 0,
    "error_rate": Decimal("0"),
    "random_seed": None,
    "fail_next": 0,
    "throttle_next": 0,
    "retry_after_seconds": 5,
    "throttled_until": None,
    "timeout_next": 0,
    "timeout_seconds": 30,
    "drop_next": 0,
    "drop_seconds": 30,
    "reject_next": 0,
    "reject_with": "validation",
    "duplicate_webhooks": 1,
}
CONFIGURATION_FIELDS = ("required_credential", "webhook_url", "webhook_credentials")


class SandboxSettingError(BusinessError):
    code = "sandbox_setting"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise SandboxSettingError(
            f"There is no '{kind}' sandbox.", fix=f"Use one of: {', '.join(KINDS)}.", technical=f"kind={kind!r}"
        )


@contextmanager
def _acting(actor, reason: str):
    if actor is None:
        with system_context(reason):
            yield
    else:
        with audit_context(actor=actor, reason=reason):
            yield


def sandbox_system(kind: str) -> SandboxSystem:
    """The kind's sandbox system, created with its reference data on first use."""
    _check_kind(kind)
    system = SandboxSystem.objects.filter(kind=kind).first()
    if system is not None:
        return system
    with system_context(f"Set up the {kind} sandbox"), transaction.atomic():
        system, created = SandboxSystem.objects.get_or_create(kind=kind)
        if created:
            seed_reference_data(kind)
    return system


def _apply(kind: str, settings: dict, *, allowed, actor, reason: str) -> SandboxSystem:
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise SandboxSettingError(
            f"The {kind} sandbox has no setting {', '.join(unknown)}.",
            fix=f"Use one of: {', '.join(allowed)}.",
            technical=f"unknown={unknown}",
        )
    settings = dict(settings)
    if settings.get("error_rate") is not None:
        try:
            settings["error_rate"] = Decimal(str(settings["error_rate"]))
        except InvalidOperation as exc:
            raise SandboxSettingError(
                f"error_rate must be a number from 0 to 1, not {settings['error_rate']!r}.",
                fix="Give the share of calls to fail, e.g. 0.2.",
            ) from exc
    if "random_seed" in settings:
        settings["random_draws"] = 0
    sandbox_system(kind)
    with _acting(actor, reason), transaction.atomic():
        system = SandboxSystem.objects.select_for_update().get(kind=kind)
        try:
            save_if_changed(system, **settings)
        except (ValidationError, TypeError, ValueError) as exc:
            detail = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in getattr(exc, "message_dict", {}).items()
            ) or str(exc)
            raise SandboxSettingError(
                f"The {kind} sandbox settings were not changed: {detail}",
                fix="Correct the value and set it again.",
                technical=repr(settings),
            ) from exc
    return system


def sandbox_faults_set(kind: str, *, actor=None, reason: str = "", **settings) -> SandboxSystem:
    """Set some fault settings of a sandbox (the others stay); setting random_seed restarts its draws."""
    return _apply(kind, settings, allowed=FAULT_DEFAULTS, actor=actor, reason=reason or f"Set {kind} sandbox faults")


def sandbox_faults_reset(kind: str, *, actor=None, reason: str = "") -> SandboxSystem:
    """Turn every fault of a sandbox off (counters, rates, the 429 window); its configuration stays."""
    return _apply(
        kind,
        {**FAULT_DEFAULTS, "random_seed": None},
        allowed=FAULT_DEFAULTS,
        actor=actor,
        reason=reason or f"Reset {kind} sandbox faults",
    )


def sandbox_system_configure(kind: str, *, actor=None, reason: str = "", **settings) -> SandboxSystem:
    """Set a sandbox's required credential, webhook URL or webhook credentials (references only)."""
    return _apply(
        kind, settings, allowed=CONFIGURATION_FIELDS, actor=actor, reason=reason or f"Configure the {kind} sandbox"
    )


def faults_as_dict(system: SandboxSystem) -> dict:
    """A sandbox's fault settings as JSON-ready values (what GET /sandbox/<kind>/_faults answers)."""
    values = {name: getattr(system, name) for name in FAULT_DEFAULTS}
    values["error_rate"] = float(values["error_rate"])
    values["throttled_until"] = values["throttled_until"].isoformat() if values["throttled_until"] else None
    return {"kind": system.kind, **values, "random_draws": system.random_draws}


def sandbox_reset(kind: str | None = None, *, actor=None, reason: str = "") -> list[SandboxSystem]:
    """Clear a sandbox (or all): records, idempotency keys, calls, webhooks and faults; re-seed reference data."""
    kinds = [kind] if kind else list(KINDS)
    reset = []
    for each in kinds:
        _check_kind(each)
        system = sandbox_system(each)
        with _acting(actor, reason or f"Reset the {each} sandbox"), transaction.atomic():
            SandboxSystem.objects.select_for_update().get(pk=system.pk)
            # One delete per row (what QuerySet.delete does for tracked models) so each leaves its history row.
            SandboxRecord.objects.filter(kind=each).delete()
            SandboxIdempotencyKey.objects.filter(kind=each).delete()
            SandboxWebhook.objects.filter(kind=each).delete()
            SandboxCall.objects.filter(kind=each).delete()
            seed_reference_data(each)
        reset.append(sandbox_faults_reset(each, actor=actor, reason=reason or f"Reset the {each} sandbox"))
    return reset


def sandbox_calls(kind: str, **filters):
    """The calls a sandbox received, oldest first, e.g. sandbox_calls("erp", method="PUT", fault="")."""
    _check_kind(kind)
    return SandboxCall.objects.filter(kind=kind, **filters).order_by("received_at", "id")


def sandbox_records(kind: str, object_type: str):
    """The records a sandbox holds of one type, oldest first, e.g. sandbox_records("erp", "customer")."""
    _check_kind(kind)
    return SandboxRecord.objects.filter(kind=kind, object_type=object_type).order_by("id")


def sandbox_webhooks(kind: str = "billing", **filters):
    """The webhook events a sandbox sent, oldest first."""
    _check_kind(kind)
    return SandboxWebhook.objects.filter(kind=kind, **filters).order_by("created_at", "id")


def sandbox_webhooks_wait(timeout: float = 10.0) -> bool:
    """Wait until the webhook deliveries running in this process are done; False if some still run."""
    return webhooks_wait(timeout)

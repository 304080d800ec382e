"""Every model keeps history, no code writes tracked rows behind history's back, and history is append-only."""

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction

from apps.canonical.models import LegalEntity
from tests.sourcecode import parse

APPS_DIR = Path(__file__).resolve().parents[2] / "apps"

# Models without a history table, and why.
EXEMPT = {
    "core.productpermissions": "holds permissions only; no table",
    "sync.stepattempt": "the engine's append-only attempt log is itself the audit record",
    "sandbox.sandboxcall": "the simulators' high-volume call log (vendor-side data, not ours)",
    "connectors.ratelimitstate": "a token-bucket counter updated on every outbound call",
    "reconciliation.snapshotinvoice": "a run's copy of another system's invoices (vendor-side data, not ours)",
    "reconciliation.snapshotinvoiceline": "a run's copy of another system's invoice lines (vendor-side data)",
    "reconciliation.snapshotpayment": "a run's copy of another system's payment applications (vendor-side data)",
    "reconciliation.snapshotbillingschedule": "a run's copy of the billing platform's schedules (vendor-side data)",
    "inbound.rejectiontally": "a counter of refused requests; history per refusal is what it exists to avoid",
}
QUERYSET_METHODS = {"update", "bulk_create", "bulk_update"}
QUERYSET_SOURCES = {"objects", "filter", "exclude", "all", "select_for_update", "select_related", "history"}


def test_every_model_under_apps_keeps_history():
    missing = []
    for model in apps.get_models():
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        if not model.__module__.startswith("apps.") or model._meta.model_name.startswith("historical"):
            continue
        if label in EXEMPT:
            continue
        if not hasattr(model, "history"):
            missing.append(label)
    assert missing == [], f"Add `history = history()` (apps.core.history) to: {missing}"


def _chain(node) -> set[str]:
    names = set()
    while isinstance(node, ast.Attribute | ast.Call):
        if isinstance(node, ast.Call):
            node = node.func
            continue
        names.add(node.attr)
        node = node.value
    return names


def test_no_code_writes_tracked_rows_around_history():
    """Queryset .update()/.bulk_create()/.bulk_update() skip history; each use must say why it is safe."""
    offenders = []
    for path in APPS_DIR.rglob("*.py"):
        if "migrations" in path.parts or path.name == "history.py":
            continue
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(parse(source)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in QUERYSET_METHODS or not (_chain(node.func.value) & QUERYSET_SOURCES):
                continue
            span = lines[node.lineno - 1 : (node.end_lineno or node.lineno) + 1]
            if not any("history-ok" in line for line in span) and not _untracked_model(node):
                offenders.append(f"{path.relative_to(APPS_DIR.parent)}:{node.lineno}")
    assert offenders == [], (
        "Use apps.core.history.bulk_create_tracked/bulk_update_tracked or save(); where a bypass is right, "
        f"say why with a '# history-ok: …' comment: {offenders}"
    )


def _untracked_model(node) -> bool:
    """Calls on models that keep no history (the EXEMPT list) need no justification."""
    names = {label.split(".")[1] for label in EXEMPT}
    target = node.func.value
    while isinstance(target, ast.Attribute | ast.Call):
        target = target.func if isinstance(target, ast.Call) else target.value
    return isinstance(target, ast.Name) and target.id.lower() in names


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the append-only trigger is a PostgreSQL feature")
def test_history_rows_cannot_be_changed_or_deleted_on_postgresql():
    entity = LegalEntity.objects.create(code="AUD-1", name="Audit test", country="US", currency="USD")
    row = entity.history.get()
    with pytest.raises(DatabaseError, match="audit trail"), transaction.atomic():
        LegalEntity.history.filter(pk=row.pk).update(history_change_reason="rewritten")
    with pytest.raises(DatabaseError, match="audit trail"), transaction.atomic():
        LegalEntity.history.filter(pk=row.pk).delete()
    assert LegalEntity.history.get(pk=row.pk).history_change_reason == row.history_change_reason

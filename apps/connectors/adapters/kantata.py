"""Kantata OX (formerly Mavenlink) as the PSA: workspaces (projects), time entries and stories (tasks).

Kantata answers every read and write with the same envelope: `{"count", "results": [{"key", "id"}],
"<key>": {"<id>": {...}}}`. A project is created idempotently in three ways at once: we look it up by
its `external_reference` (our project code) first, send `Idempotency-Key`, and when Kantata says
"external_reference has already been taken" (a concurrent or lost earlier create) we look it up again
and return it with `created=False`.
"""

from apps.core.money import to_minor_units

from ..errors import TargetRejected
from ..http import path_segment
from ..interfaces import ExternalRecord
from .base import Adapter, drop_empty, replayed

COLLECTIONS = {
    "workspace": "workspaces",
    "workspaces": "workspaces",
    "project": "workspaces",
    "time_entry": "time_entries",
    "time_entries": "time_entries",
    "story": "stories",
    "stories": "stories",
    "task": "stories",
}
SINGULAR = {"workspaces": "workspace", "time_entries": "time entry", "stories": "story"}


class KantataPSA(Adapter):
    """Kantata OX API v1 as a PSA."""

    vendor_label = "Kantata"

    def parse_error(self, body) -> tuple[str, str]:
        """Kantata answers `{"errors": [{"type": "validation", "message": ...}]}`."""
        if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
            errors = [e for e in body["errors"] if isinstance(e, dict)]
            message = "; ".join(str(e.get("message", "")) for e in errors)
            return message, str(errors[0].get("type", "")) if errors else ""
        return super().parse_error(body)

    def fetch(self, object_name: str, record_id: str) -> dict:
        """One workspace, time entry or story as Kantata holds it."""
        collection = COLLECTIONS.get(object_name, object_name)
        action = f"read {SINGULAR.get(collection, collection)} {record_id}"
        body = self.http.get_json(f"{path_segment(collection)}/{path_segment(record_id)}.json", action=action)
        records = records_of(body)
        if not records:
            raise self.missing_in_answer(f"{collection} record", action, body)
        return records[0]

    def find_project(self, external_reference: str) -> ExternalRecord | None:
        """The workspace carrying our project code as its external reference, if Kantata has one."""
        body = self.http.get_json(
            "workspaces.json",
            params={"external_reference": external_reference},
            action=f"look up project {external_reference}",
        )
        records = [r for r in records_of(body) if str(r.get("external_reference", "")) == external_reference]
        if not records:
            return None
        return ExternalRecord(id=str(records[0]["id"]), data=records[0], created=False)

    def create_project(self, *, project, contract, customer, idempotency_key: str) -> ExternalRecord:
        """Create the workspace for a project, or return the one already there for its code."""
        existing = self.find_project(project.code)
        if existing is not None:
            return existing
        value = (contract.total_value if contract is not None else None) or project.budget_amount
        workspace = drop_empty(
            {
                "title": project.name,
                "external_reference": project.code,
                "start_date": project.start_date or (contract.start_date if contract is not None else None),
                "due_date": project.end_date or (contract.end_date if contract is not None else None),
                "price_in_cents": to_minor_units(value, project.currency) if value is not None else None,
                "currency": project.currency,
                "account_name": customer.name,
                "billing_method": project.billing_method,
                "rate_card": project.rate_card.code if project.rate_card_id else None,
            }
        )
        action = f"create project {project.code}"
        try:
            response = self.http.request(
                "POST", "workspaces.json", json={"workspace": workspace}, idempotency_key=idempotency_key, action=action
            )
        except TargetRejected as exc:
            if "already been taken" in exc.vendor_message and "external_reference" in exc.vendor_message:
                found = self.find_project(project.code)
                if found is not None:
                    return found
            raise
        body = self.http.json(response, action=action)
        records = records_of(body)
        if not records or not records[0].get("id"):
            raise self.missing_in_answer("workspace ID", action, body)
        return ExternalRecord(id=str(records[0]["id"]), data=records[0], created=not replayed(response))

    def rebaseline_project(self, record_id: str, *, project, contract, amendment, idempotency_key: str) -> None:
        """Move a workspace to the amended contract's end date and value, noting the contract version."""
        value = amendment.new_total_value
        if value is None and contract is not None:
            value = contract.total_value
        workspace = drop_empty(
            {
                "due_date": amendment.new_end_date or project.end_date,
                "price_in_cents": to_minor_units(value, project.currency) if value is not None else None,
                "baseline_version": amendment.version,
            }
        )
        self.http.request(
            "PUT",
            f"workspaces/{path_segment(record_id)}.json",
            json={"workspace": workspace},
            idempotency_key=idempotency_key,
            action=f"re-baseline project {project.code} to contract version {amendment.version}",
        )


def records_of(body) -> list[dict]:
    """The records of a Kantata envelope, in the order of its `results`."""
    if not isinstance(body, dict):
        return []
    records = []
    for result in body.get("results") or []:
        record = (body.get(result.get("key")) or {}).get(str(result.get("id")))
        if isinstance(record, dict):
            records.append(record if "id" in record else {"id": str(result.get("id")), **record})
    return records

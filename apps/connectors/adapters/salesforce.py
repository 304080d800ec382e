"""Salesforce (CRM) through its REST API: sObject reads, updates of opportunities and accounts, creates.

Updates are PATCHes of named fields, idempotent by nature. Creates send `Idempotency-Key` (the
sandbox honours it); a production org does not, so the workflows only create in Salesforce what
they can look up again before a retry (or use an external-ID upsert field).
"""

from ..http import path_segment
from ..interfaces import ExternalRecord
from .base import Adapter, replayed


class SalesforceCRM(Adapter):
    """Salesforce REST API v60 (sObject resources) as a CRM."""

    vendor_label = "Salesforce"
    oauth_token_path = "/services/oauth2/token"

    def parse_error(self, body) -> tuple[str, str]:
        """Salesforce answers errors as a list: [{"message", "errorCode", "fields"}]."""
        if isinstance(body, list) and body and isinstance(body[0], dict):
            messages = []
            for item in body:
                fields = item.get("fields") or []
                where = f" (field {', '.join(fields)})" if fields else ""
                messages.append(f"{item.get('message', '')}{where}")
            return "; ".join(messages), str(body[0].get("errorCode", ""))
        return super().parse_error(body)

    def fetch(self, object_name: str, record_id: str) -> dict:
        """The record as Salesforce holds it (with `attributes` and `Id`)."""
        return self.http.get_json(
            f"sobjects/{path_segment(object_name)}/{path_segment(record_id)}",
            action=f"read {object_name} {record_id}",
        )

    def update_opportunity(self, record_id: str, fields: dict) -> None:
        """Write fields back to an opportunity (project status, ERP/PSA project IDs, a message)."""
        self._update("Opportunity", record_id, fields)

    def update_account(self, record_id: str, fields: dict) -> None:
        """Write fields back to an account (credit status, AR balance, ERP customer ID, last payment)."""
        self._update("Account", record_id, fields)

    def create(self, object_name: str, fields: dict, *, idempotency_key: str) -> ExternalRecord:
        """Create a record; answers its new 18-character ID."""
        action = f"create a {object_name}"
        response = self.http.request(
            "POST", f"sobjects/{path_segment(object_name)}", json=fields, idempotency_key=idempotency_key, action=action
        )
        body = self.http.json(response, action=action)
        if not isinstance(body, dict) or not body.get("id"):
            raise self.missing_in_answer("record ID", action, body)
        return ExternalRecord(id=str(body["id"]), data=body, created=not replayed(response))

    def _update(self, object_name: str, record_id: str, fields: dict) -> None:
        if not fields:
            return
        self.http.request(
            "PATCH",
            f"sobjects/{object_name}/{path_segment(record_id)}",
            json=fields,
            action=f"update {', '.join(fields)} of {object_name} {record_id}",
        )

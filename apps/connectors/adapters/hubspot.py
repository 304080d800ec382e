"""HubSpot (CRM) through its CRM v3 API: deals and companies as objects with properties and associations.

A HubSpot webhook is thin (an objectId and the property that changed), so `fetch_document` reads the deal
with its company associations and then the companies in one batch read, giving the source profile
`{"deal": {...}, "company": {...}}`. Writes are PATCHes of properties, idempotent by nature. The workflows
speak the CRM interface's field names (`Project_Status__c`, `AR_Balance__c`, ...); HubSpot's custom
properties are the same names in lower case without `__c` (`project_status`, `ar_balance`).

Errors: HubSpot answers `{"status": "error", "message", "category", "subCategory"?, "errors"?}`. 409
CONFLICT (a unique property already used) and 400 VALIDATION_ERROR are refusals of the data; 423 LOCKED
(the portal is busy syncing) is a concurrency limit, retried; 429 RATE_LIMITS waits for `Retry-After`.
"""

from ..errors import ConcurrencyError, ConnectorError, PermanentError, TargetRejected
from ..http import path_segment
from ..interfaces import ExternalRecord
from .base import Adapter, replayed

# Our object names (singular, the profile's `fetch.object` and `include`) → HubSpot's object type.
OBJECT_TYPES = {
    "deal": "deals",
    "deals": "deals",
    "opportunity": "deals",
    "company": "companies",
    "companies": "companies",
    "account": "companies",
    "contact": "contacts",
    "contacts": "contacts",
}
# The properties read unless a profile asks for others (HubSpot answers only a few defaults otherwise).
PROPERTIES = {
    "deals": [
        "dealname",
        "amount",
        "deal_currency_code",
        "closedate",
        "dealstage",
        "pipeline",
        "contract_type",
        "rate_card",
        "legal_entity",
        "region",
        "project_status",
        "psa_project_id",
        "erp_project_id",
    ],
    "companies": [
        "name",
        "domain",
        "country",
        "vat_number",
        "region",
        "billing_email",
        "credit_status",
        "ar_balance",
        "erp_customer_id",
    ],
    "contacts": ["email", "firstname", "lastname", "company"],
}
# The CRM interface's standard field names (Salesforce's) → HubSpot's property, per object type.
STANDARD_FIELDS = {
    "deals": {
        "Name": "dealname",
        "StageName": "dealstage",
        "CloseDate": "closedate",
        "Amount": "amount",
        "CurrencyIsoCode": "deal_currency_code",
    },
    "companies": {"Name": "name", "Website": "domain", "BillingCountry": "country"},
}
STAGES = {"Closed Won": "closedwon", "Closed Lost": "closedlost"}
BATCH_LIMIT = 100


def property_name(object_type: str, field: str) -> str:
    """The HubSpot property for a CRM interface field: standard names mapped, custom ones lower case without __c."""
    return STANDARD_FIELDS.get(object_type, {}).get(field) or field.removesuffix("__c").lower()


def property_value(value) -> str:
    """HubSpot properties are strings: numbers exactly, dates ISO, booleans true/false, None cleared."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return format(value, "f") if hasattr(value, "is_finite") else str(value)


class HubSpotCRM(Adapter):
    """HubSpot CRM v3 API (private app token as bearer) as a CRM."""

    vendor_label = "HubSpot"

    def parse_error(self, body) -> tuple[str, str]:
        """HubSpot: {"status": "error", "message", "category", "subCategory"?, "errors": [{"message"}]?}."""
        if isinstance(body, dict) and "category" in body:
            return str(body.get("message", "")), str(body.get("subCategory") or body.get("category") or "")
        return super().parse_error(body)

    # --- reads -------------------------------------------------------------------------------------------

    def fetch(self, object_name: str, record_id: str) -> dict:
        """One object with its usual properties (and, for a deal, its company associations)."""
        object_type = self._object_type(object_name)
        params = {"properties": ",".join(PROPERTIES[object_type])}
        if object_type == "deals":
            params["associations"] = "companies"
        return self._call(
            "GET",
            f"objects/{object_type}/{path_segment(record_id)}",
            params=params,
            action=f"read HubSpot {object_name} {record_id}",
        )

    def fetch_document(self, object_name: str, record_id: str, *, params=None, include=()) -> dict:
        """The object and its associated records, e.g. {"deal": {...}, "company": {...}} (the first company)."""
        object_type = self._object_type(object_name)
        wanted = list(PROPERTIES[object_type]) + [p for p in (params or {}).get("properties", []) if isinstance(p, str)]
        related = [self._object_type(name) for name in include]
        query = {"properties": ",".join(dict.fromkeys(wanted))}
        if related:
            query["associations"] = ",".join(dict.fromkeys(related))
        record = self._call(
            "GET",
            f"objects/{object_type}/{path_segment(record_id)}",
            params=query,
            action=f"read HubSpot {object_name} {record_id}",
        )
        document = {object_name: record}
        for name, to_type in zip(include, related, strict=True):
            ids = [str(item.get("id")) for item in record.get("associations", {}).get(to_type, {}).get("results", [])]
            if not ids:
                continue
            found = self.batch_read(to_type, ids[:BATCH_LIMIT])
            if ids[0] not in found:
                raise PermanentError(
                    f"HubSpot {object_name} {record_id} is associated with {name} {ids[0]}, which HubSpot could not "
                    "read (deleted, or the app lacks the scope).",
                    fix=f"Check {name} {ids[0]} in HubSpot and the private app's scopes, then re-run the step.",
                    system=self.system.slug,
                )
            document[name] = found[ids[0]]
        return document

    def batch_read(self, object_name: str, ids: list[str]) -> dict[str, dict]:
        """Objects by ID in one call (up to 100), as {id: object}; IDs HubSpot does not have are left out."""
        object_type = self._object_type(object_name)
        found: dict[str, dict] = {}
        for start in range(0, len(ids), BATCH_LIMIT):
            chunk = ids[start : start + BATCH_LIMIT]
            body = self._call(
                "POST",
                f"objects/{object_type}/batch/read",
                json={"properties": PROPERTIES[object_type], "inputs": [{"id": each} for each in chunk]},
                action=f"read {len(chunk)} HubSpot {object_type}",
            )
            for item in body.get("results", []):
                found[str(item.get("id"))] = item
        return found

    # --- writes ------------------------------------------------------------------------------------------

    def update_opportunity(self, record_id: str, fields: dict) -> None:
        """Write project status, PSA/ERP project IDs and a message to the deal."""
        self._update("deals", record_id, fields)

    def update_account(self, record_id: str, fields: dict) -> None:
        """Write credit status, AR balance, ERP customer ID and last payment date to the company."""
        self._update("companies", record_id, fields)

    def create(self, object_name: str, fields: dict, *, idempotency_key: str) -> ExternalRecord:
        """Create an object; a unique property already used is a refusal naming the existing ID."""
        object_type = self._object_type(object_name)
        action = f"create a HubSpot {object_type[:-1]}"
        properties = self._properties(object_type, fields)
        response = self._call(
            "POST",
            f"objects/{object_type}",
            json={"properties": properties},
            idempotency_key=idempotency_key,
            action=action,
            raw=True,
        )
        body = self.http.json(response, action=action)
        if not isinstance(body, dict) or not body.get("id"):
            raise self.missing_in_answer("object ID", action, body)
        return ExternalRecord(id=str(body["id"]), data=body, created=not replayed(response))

    # --- helpers -----------------------------------------------------------------------------------------

    def _object_type(self, name: str) -> str:
        object_type = OBJECT_TYPES.get((name or "").lower())
        if object_type is None:
            raise PermanentError(
                f"The HubSpot connector cannot read or write '{name}' records.",
                fix=f"Use one of: {', '.join(sorted(set(OBJECT_TYPES)))} in the source profile's fetch.",
                system=self.system.slug,
            )
        return object_type

    def _properties(self, object_type: str, fields: dict) -> dict:
        properties = {}
        for field, value in fields.items():
            name = property_name(object_type, field)
            properties[name] = STAGES.get(value, value) if name == "dealstage" else property_value(value)
        return properties

    def _update(self, object_type: str, record_id: str, fields: dict) -> None:
        if not fields:
            return
        properties = self._properties(object_type, fields)
        self._call(
            "PATCH",
            f"objects/{object_type}/{path_segment(record_id)}",
            json={"properties": properties},
            action=f"update {', '.join(properties)} of HubSpot {object_type[:-1]} {record_id}",
        )

    def _call(self, method: str, path: str, *, action: str, raw: bool = False, **kwargs):
        try:
            response = self.http.request(method, path, action=action, **kwargs)
        except ConnectorError as error:
            raise self.classify(error, action) from error
        return response if raw else self.http.json(response, action=action)

    def classify(self, error: ConnectorError, action: str) -> ConnectorError:
        """HubSpot's categories in business words: a duplicate names the record already there; LOCKED waits."""
        if error.status == 423:
            return ConcurrencyError(
                f"HubSpot is busy syncing a large amount of data and locked the record while we tried to {action}.",
                technical=error.technical,
                system=error.system,
                status=error.status,
                vendor_code=error.vendor_code,
                vendor_message=error.vendor_message,
                response_body=error.response_body,
            )
        if error.status == 409:
            return TargetRejected(
                f"HubSpot already has a record with the same unique value, so it refused to {action}: "
                f"{error.vendor_message}",
                fix="Link the existing HubSpot record instead (its ID is in the message), or correct the value.",
                technical=error.technical,
                system=error.system,
                status=error.status,
                vendor_code=error.vendor_code,
                vendor_message=error.vendor_message,
                response_body=error.response_body,
            )
        return error

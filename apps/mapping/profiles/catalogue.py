"""What a profile may say: the canonical commands with their fields, value types, formats, transforms, operators
and the settings of a spec, a field mapping and a list field. Data only; validation and the engine read it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

SPEC_VERSION = 1

# The canonical ContractType values (apps.canonical.models.ContractType); kept here so this module stays pure.
CONTRACT_TYPES = ("fixed_fee", "time_and_materials", "retainer", "subscription", "milestone", "usage")
# The canonical Invoice.Status values.
INVOICE_STATUSES = ("draft", "posted", "partially_paid", "paid", "void")


# --- the canonical commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanonicalField:
    """One key of a canonical command's data: its kind, whether a profile must map it, allowed values."""

    kind: str  # string, currency, decimal, int, boolean, date, datetime, lines
    required: bool = True
    choices: tuple[str, ...] = ()
    fields: Mapping[str, CanonicalField] | None = None  # for kind "lines": the keys of each line

    @property
    def default_type(self) -> str:
        return {"currency": "string"}.get(self.kind, self.kind)


def _required(kind: str = "string", **options) -> CanonicalField:
    return CanonicalField(kind, True, **options)


def _optional(kind: str = "string", **options) -> CanonicalField:
    return CanonicalField(kind, False, **options)


INVOICE_LINE = {
    "description": _required(),
    "quantity": _required("decimal"),
    "unit_price": _required("decimal"),
    "amount": _required("decimal"),
    "tax_amount": _required("decimal"),
    "service_item": _optional(),
}

RATE_CHANGE = {
    "role": _required(),
    "bill_rate": _required("decimal"),
    "cost_rate": _optional("decimal"),
    "currency": _optional("currency"),
}

CANONICAL_COMMANDS: dict[str, dict[str, CanonicalField]] = {
    "opportunity.won": {
        "opportunity_external_id": _required(),
        "opportunity_name": _required(),
        "amount": _required("decimal"),
        "currency": _required("currency"),
        "close_date": _required("date"),
        "contract_type": _required(choices=CONTRACT_TYPES),
        "rate_card": _optional(),
        "customer_external_id": _required(),
        "customer_name": _required(),
        "customer_tax_id": _optional(),
        "customer_country": _optional(),
        "region": _optional(),
        "legal_entity": _required(),
        "billing_email": _optional(),
    },
    "customer.changed": {
        "customer_external_id": _required(),
        "name": _required(),
        "tax_id": _optional(),
        "tax_region": _optional(),
        "currency": _optional("currency"),
        "billing_email": _optional(),
        "region": _optional(),
        "parent_external_id": _optional(),
    },
    "time_entry.approved": {
        "time_entry_external_id": _required(),
        "resource_external_id": _required(),
        "project_external_id": _required(),
        "task_external_id": _optional(),
        "work_date": _required("date"),
        "hours": _required("decimal"),
        "role": _optional(),
        "billable": _required("boolean"),
        "description": _optional(),
        "approved_at": _optional("datetime"),
    },
    "expense.approved": {
        "expense_external_id": _required(),
        "resource_external_id": _required(),
        "project_external_id": _required(),
        "incurred_on": _required("date"),
        "category": _required(),
        "amount": _required("decimal"),
        "currency": _required("currency"),
        "billable": _required("boolean"),
        "description": _optional(),
    },
    "milestone.completed": {
        "milestone_external_id": _required(),
        "project_external_id": _required(),
        "name": _required(),
        "amount": _optional("decimal"),
        "currency": _optional("currency"),
        "completed_on": _required("date"),
    },
    "invoice.posted": {
        "invoice_external_id": _required(),
        "number": _required(),
        "customer_external_id": _required(),
        "issue_date": _required("date"),
        "due_date": _required("date"),
        "currency": _required("currency"),
        "subtotal": _required("decimal"),
        "tax_total": _required("decimal"),
        "total": _required("decimal"),
        "status": _required(choices=INVOICE_STATUSES),
        "lines": _required("lines", fields=INVOICE_LINE),
    },
    "payment.received": {
        "payment_external_id": _required(),
        "reference": _required(),
        "customer_external_id": _required(),
        "invoice_external_id": _optional(),
        "received_on": _required("date"),
        "amount": _required("decimal"),
        "currency": _required("currency"),
        "method": _optional(),
    },
    "contract.amended": {
        "contract_external_id": _required(),
        "version": _required("int"),
        "effective_from": _required("date"),
        "new_total_value": _optional("decimal"),
        "new_end_date": _optional("date"),
        "description": _required(),
        "new_rates": _optional("lines", fields=RATE_CHANGE),
    },
    "resource.changed": {
        "resource_external_id": _required(),
        "employee_number": _optional(),
        "name": _required(),
        "email": _optional(),
        "role": _optional(),
        "active": _required("boolean"),
    },
}

VALUE_TYPES = ("string", "int", "decimal", "minor_units", "boolean", "date", "datetime")
KIND_TYPES = {
    "string": ("string",),
    "currency": ("string",),
    "decimal": ("decimal", "minor_units"),
    "int": ("int",),
    "boolean": ("boolean",),
    "date": ("date",),
    "datetime": ("datetime",),
}
DATE_FORMATS = ("iso", "epoch_s", "epoch_ms")
TRANSFORMS = {
    "strip": str.strip,
    "upper": str.upper,
    "lower": str.lower,
    "collapse_spaces": lambda text: " ".join(text.split()),
}
OPERATORS = ("equals", "not_equals", "in", "not_in", "exists", "contains", "matches", "gt", "gte", "lt", "lte")
TRUE_WORDS = {"true", "t", "yes", "y", "1", "on"}
FALSE_WORDS = {"false", "f", "no", "n", "0", "off"}

SPEC_KEYS = (
    "spec_version", "vendor", "event_types", "schema_version", "delivery", "description", "notes", "each", "when",
    "event", "fetch", "commands", "sensitive",
)  # fmt: skip
MAPPING_KEYS = (
    "path", "const", "template", "type", "format", "timezone", "currency", "divide_by", "multiply_by", "places",
    "transform", "extract", "map", "map_default", "value_map", "as_of", "required", "default", "choices", "label",
)  # fmt: skip
LIST_KEYS = ("each", "fields", "required", "label")
TEMPLATE_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")

# The delivery formats (envelopes) a profile's `delivery` may name. apps.inbound.envelopes has one splitter for each;
# tests/inbound/test_envelopes.py checks that the two lists agree (mapping may not import inbound).
DELIVERY_SCHEMES = (
    "standard-webhooks", "stripe", "chargebee", "hubspot", "salesforce", "microsoft-graph", "bamboohr", "kantata",
    "netsuite", "generic",
)  # fmt: skip

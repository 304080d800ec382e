"""Reference data the ERP sandbox starts with: subsidiaries, currencies, tax codes, items, rates, dimensions."""

from apps.core.history import bulk_create_tracked

from .models import SandboxRecord


def _ref(record_id: str, name: str) -> dict:
    return {"id": record_id, "refName": name}


USD, GBP, EUR = _ref("1", "USD"), _ref("2", "GBP"), _ref("4", "EUR")

ERP_REFERENCE_DATA: dict[str, list[tuple[str, dict]]] = {
    "subsidiary": [
        ("1", {"name": "Acme Consulting Inc.", "country": "US", "currency": USD, "isInactive": False}),
        ("2", {"name": "Acme Consulting Ltd", "country": "GB", "currency": GBP, "isInactive": False}),
        ("3", {"name": "Acme Consulting GmbH", "country": "DE", "currency": EUR, "isInactive": False}),
    ],
    "currency": [
        ("1", {"name": "US Dollar", "symbol": "USD", "isBaseCurrency": True, "exchangeRate": 1}),
        ("2", {"name": "British Pound", "symbol": "GBP", "isBaseCurrency": False, "exchangeRate": 1.27}),
        ("4", {"name": "Euro", "symbol": "EUR", "isBaseCurrency": False, "exchangeRate": 1.08}),
    ],
    # rate is a percentage, as NetSuite shows it on a tax code.
    "salesTaxItem": [
        ("10", {"itemId": "US-EXEMPT", "description": "US services, not taxed", "rate": 0, "country": "US"}),
        ("11", {"itemId": "US-NY", "description": "New York sales tax", "rate": 8.875, "country": "US"}),
        ("20", {"itemId": "UK-VAT-S", "description": "UK VAT standard rate", "rate": 20, "country": "GB"}),
        ("21", {"itemId": "UK-VAT-Z", "description": "UK VAT zero rate", "rate": 0, "country": "GB"}),
        ("30", {"itemId": "DE-VAT-S", "description": "German VAT standard rate", "rate": 19, "country": "DE"}),
        ("31", {"itemId": "EU-RC", "description": "EU reverse charge", "rate": 0, "country": "DE"}),
    ],
    "item": [
        ("100", {"itemId": "SVC-CONSULTING", "displayName": "Consulting services", "itemType": "Service"}),
        ("101", {"itemId": "SVC-PM", "displayName": "Project management", "itemType": "Service"}),
        ("102", {"itemId": "SVC-MILESTONE", "displayName": "Milestone billing", "itemType": "Service"}),
        ("103", {"itemId": "SVC-RETAINER", "displayName": "Retainer", "itemType": "Service"}),
        ("104", {"itemId": "EXP-REBILL", "displayName": "Rebillable expenses", "itemType": "OtherCharge"}),
    ],
    # exchangeRate: units of the base currency for one unit of the transaction currency.
    "currencyRate": [
        (str(number), {"baseCurrency": base, "transactionCurrency": other, "exchangeRate": rate, "effectiveDate": day})
        for number, (base, other, rate, day) in enumerate(
            [
                (USD, GBP, 1.27, "2026-10-01"),
                (USD, EUR, 1.08, "2026-10-01"),
                (GBP, USD, 0.7874, "2026-10-01"),
                (GBP, EUR, 0.8504, "2026-10-01"),
                (EUR, USD, 0.9259, "2026-10-01"),
                (EUR, GBP, 1.1759, "2026-10-01"),
                (USD, GBP, 1.26, "2026-11-01"),
                (USD, EUR, 1.09, "2026-11-01"),
                (GBP, USD, 0.7937, "2026-11-01"),
                (GBP, EUR, 0.8651, "2026-11-01"),
                (EUR, USD, 0.9174, "2026-11-01"),
                (EUR, GBP, 1.1560, "2026-11-01"),
            ],
            start=1,
        )
    ],
    "department": [
        ("1", {"name": "Consulting", "isInactive": False}),
        ("2", {"name": "Delivery", "isInactive": False}),
        ("3", {"name": "Finance", "isInactive": False}),
    ],
    "classification": [
        ("1", {"name": "Time and materials", "isInactive": False}),
        ("2", {"name": "Fixed fee", "isInactive": False}),
        ("3", {"name": "Milestone", "isInactive": False}),
        ("4", {"name": "Retainer", "isInactive": False}),
    ],
}

# The one company of the Business Central sandbox and its reference data (ids are GUIDs there).
BC_COMPANY_ID = "3f2a9c1e-6b7d-4e21-9a0f-5c8d2b7e4a10"
BC_REFERENCE_DATA: dict[str, list[tuple[str, dict]]] = {
    "currency": [
        ("a1c0e6f2-0001-4c3b-9d1e-000000000001", {"code": "USD", "displayName": "US dollar", "symbol": "$"}),
        ("a1c0e6f2-0001-4c3b-9d1e-000000000002", {"code": "EUR", "displayName": "Euro", "symbol": "€"}),
    ],
    "taxGroup": [
        ("b2d1f7a3-0002-4c3b-9d1e-000000000001", {"code": "VAT20", "displayName": "UK VAT 20%", "taxPercent": 20}),
        ("b2d1f7a3-0002-4c3b-9d1e-000000000002", {"code": "VAT0", "displayName": "Zero rated", "taxPercent": 0}),
        ("b2d1f7a3-0002-4c3b-9d1e-000000000003", {"code": "NONTAXABLE", "displayName": "Not taxed", "taxPercent": 0}),
    ],
    "item": [
        (
            "c3e2a8b4-0003-4c3b-9d1e-000000000001",
            {"number": "SVC-CONSULTING", "displayName": "Consulting services", "type": "Service"},
        ),
        (
            "c3e2a8b4-0003-4c3b-9d1e-000000000002",
            {"number": "SVC-PM", "displayName": "Project management", "type": "Service"},
        ),
        (
            "c3e2a8b4-0003-4c3b-9d1e-000000000003",
            {"number": "EXP-REBILL", "displayName": "Rebillable expenses", "type": "Non-Inventory"},
        ),
    ],
    "dimensionValue": [
        (
            "d4f3b9c5-0004-4c3b-9d1e-000000000001",
            {"code": "CONSULTING", "dimensionCode": "DEPARTMENT", "displayName": "Consulting"},
        ),
        (
            "d4f3b9c5-0004-4c3b-9d1e-000000000002",
            {"code": "DELIVERY", "dimensionCode": "DEPARTMENT", "displayName": "Delivery"},
        ),
    ],
}

REFERENCE_DATA = {"erp": ERP_REFERENCE_DATA, "business-central": BC_REFERENCE_DATA}


def seed_reference_data(kind: str) -> int:
    """Create the kind's reference records that are missing (idempotent); returns how many were created."""
    wanted = REFERENCE_DATA.get(kind, {})
    existing = set(
        SandboxRecord.objects.filter(kind=kind, object_type__in=list(wanted)).values_list("object_type", "internal_id")
    )
    missing = [
        SandboxRecord(kind=kind, object_type=object_type, internal_id=internal_id, data=dict(data))
        for object_type, rows in wanted.items()
        for internal_id, data in rows
        if (object_type, internal_id) not in existing
    ]
    if missing:
        bulk_create_tracked(SandboxRecord, missing)
    return len(missing)

"""The value maps the workflows translate through, by the names stewards give them in the configuration.

Listed here, below the workflows, so the configuration import can name a missing one before a workflow
fails on it (`docs/configuration.md`, "Value maps the workflows need").
"""

LEGAL_ENTITY_SUBSIDIARY = "legal-entity-subsidiary"  # canonical legal entity code → ERP subsidiary id
CURRENCY_ERP = "currency-erp"  # ISO currency → ERP currency id
SERVICE_ITEM_ERP = "service-item-erp-item"  # service item / charge type → ERP item id
TAX_REGION_TAX_CODE = "tax-region-tax-code"  # customer tax region → ERP tax code id

# name → what it translates and which workflow steps need it
REQUIRED = {
    LEGAL_ENTITY_SUBSIDIARY: "legal entity code → ERP subsidiary id (ERP customers, financial projects)",
    CURRENCY_ERP: "ISO currency code → ERP currency id (ERP customers; refreshed by the reference data pull)",
    TAX_REGION_TAX_CODE: "customer tax region → ERP tax code id (invoices posted to ERP)",
    SERVICE_ITEM_ERP: "service item → ERP item id (invoice lines posted to ERP)",
}

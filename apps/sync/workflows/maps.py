"""The value maps the workflows translate through (names as stewards configure them)."""

LEGAL_ENTITY_SUBSIDIARY = "legal-entity-subsidiary"  # canonical legal entity code → ERP subsidiary id
CURRENCY_ERP = "currency-erp"  # ISO currency → ERP currency id
SERVICE_ITEM_ERP = "service-item-erp-item"  # service item / charge type → ERP item id
TAX_REGION_TAX_CODE = "tax-region-tax-code"  # customer tax region → ERP tax code id

ALL = [LEGAL_ENTITY_SUBSIDIARY, CURRENCY_ERP, SERVICE_ITEM_ERP, TAX_REGION_TAX_CODE]

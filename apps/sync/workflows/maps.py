"""The value maps the workflows translate through (names as stewards configure them; see apps.mapping.workflow_maps)."""

from apps.mapping.workflow_maps import CURRENCY_ERP, LEGAL_ENTITY_SUBSIDIARY, SERVICE_ITEM_ERP, TAX_REGION_TAX_CODE

ALL = [LEGAL_ENTITY_SUBSIDIARY, CURRENCY_ERP, SERVICE_ITEM_ERP, TAX_REGION_TAX_CODE]

"""Which adapter talks to a connected system: chosen by the system's kind and vendor."""

from .adapters.base import Adapter
from .adapters.business_central import BusinessCentralERP
from .adapters.chargebee import ChargebeeBilling
from .adapters.hubspot import HubSpotCRM
from .adapters.kantata import KantataPSA
from .adapters.netsuite import NetSuiteERP
from .adapters.salesforce import SalesforceCRM
from .adapters.stripe import StripeBilling
from .errors import PermanentError

ADAPTERS: dict[tuple[str, str], type[Adapter]] = {
    ("crm", "salesforce"): SalesforceCRM,
    ("psa", "kantata"): KantataPSA,
    ("erp", "netsuite"): NetSuiteERP,
    ("billing", "chargebee"): ChargebeeBilling,
    ("crm", "hubspot"): HubSpotCRM,
    ("billing", "stripe"): StripeBilling,
    ("erp", "business-central"): BusinessCentralERP,
}


def adapter_for(system, *, correlation_id: str, recorder=None, session=None, root_correlation_id: str = "") -> Adapter:
    """The adapter for a system (implementing the CRM, PSA, ERP or Billing protocol of its kind)."""
    vendor = (system.vendor or "").strip().lower().replace("_", "-").replace(" ", "-")
    adapter_class = ADAPTERS.get((system.kind, vendor))
    if adapter_class is None:
        supported = ", ".join(f"{vendor} ({kind})" for kind, vendor in ADAPTERS)
        raise PermanentError(
            f"The console has no connector for {system.name}: vendor '{system.vendor}' as a "
            f"{system.get_kind_display()} system. Supported: {supported}.",
            fix=f"Set the vendor and kind of {system.name} to a supported pair, or route this step to another system.",
            system=system.slug,
        )
    return adapter_class(
        system,
        correlation_id=correlation_id,
        recorder=recorder,
        session=session,
        root_correlation_id=root_correlation_id,
    )

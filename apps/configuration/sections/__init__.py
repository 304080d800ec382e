"""The sections of the configuration document, in the order they are exported and applied.

Adding a section: write a module with a `Section` subclass (export, existing, plan) and register it
here after the sections it refers to. Nothing else changes.
"""

from .base import Section
from .legal_entities import LegalEntitiesSection
from .ownership_rules import OwnershipRulesSection
from .rate_cards import RateCardsSection
from .routes import RoutesSection
from .source_profiles import SourceProfilesSection
from .systems import SystemsSection
from .value_maps import ValueMapsSection

REGISTRY: dict[str, Section] = {}


def register(section: Section) -> Section:
    """Add a section; the sections it depends on must already be registered, so they are applied first."""
    if section.key in REGISTRY:
        raise ValueError(f"section {section.key!r} is registered twice")
    missing = [key for key in section.depends_on if key not in REGISTRY]
    if missing:
        raise ValueError(f"section {section.key!r} depends on {missing}, which must be registered before it")
    REGISTRY[section.key] = section
    return section


register(SystemsSection())
register(OwnershipRulesSection())
register(ValueMapsSection())
register(RateCardsSection())
register(SourceProfilesSection())
register(LegalEntitiesSection())
register(RoutesSection())

"""Match before create, for the workflows: is the customer already in the target system?

The target's rules (`ConnectedSystem.match_customers_by`) decide; records in the target already linked to
another of our customers are someone else and never match. An ambiguous match is an exception that
lists the candidates, so a person links the right one instead of the console guessing or making a twin.
"""

from apps.connectors.matching import CustomerMatch, match_customer
from apps.core.errors import BusinessError
from apps.core.objects import BusinessObject
from apps.mapping.models import CrossReference
from apps.systems.models import ConnectedSystem, CustomerMatchRule


class AmbiguousMatch(BusinessError):
    code = "ambiguous_match"


def existing_customer(system: ConnectedSystem, connector, customer, *, subsidiary_id: str = "") -> CustomerMatch | None:
    """The target's record that is this customer by the system's rules, or None; raises AmbiguousMatch."""
    rules = list(system.match_customers_by or [])
    if not rules:
        return None
    candidates = connector.find_customers(customer=customer, rules=rules)
    taken = set(
        CrossReference.objects.filter(
            system=system, object_type=BusinessObject.CUSTOMER, external_id__in=[c.id for c in candidates]
        )
        .exclude(object_id=customer.pk)
        .values_list("external_id", flat=True)
    )
    match = match_customer(
        [candidate for candidate in candidates if candidate.id not in taken],
        rules=rules,
        number=customer.number,
        name=customer.name,
        email=customer.billing_email,
        tax_id=customer.tax_id,
        subsidiary_id=subsidiary_id,
    )
    if match is not None and match.unique is None:
        rule = CustomerMatchRule(match.rule).label.lower()
        listed = "; ".join(candidate.describe() for candidate in match.found)
        raise AmbiguousMatch(
            f"Customer {customer.number} {customer.name} may already exist in {system.name}: "
            f"{len(match.found)} customers there match by {rule} ({listed}). The console does not guess which "
            f"one, and does not create another.",
            fix=f"Find the right customer in {system.name} and record it as the cross-reference of "
            f"{customer.number} for {system.name} (Mapping → Cross-references), then re-run the transaction.",
            technical=f"rule={match.rule} candidates={[candidate.id for candidate in match.found]}",
            context={"rule": match.rule, "candidates": [candidate.id for candidate in match.found]},
        )
    return match

"""Match before create: is the customer we are about to create already in the target?

An adapter's `find_customers` returns the target's records that could be the customer (searched by our
number, name, e-mail and tax ID, as the vendor's API allows); `match_customer` applies the firm's rules
for that system (`ConnectedSystem.match_customers_by`) in the order given. The first rule that finds
anything decides: one record is the customer (link it, create nothing), several are ambiguous (a person
chooses). No rule finding anything means the customer is new there.
"""

import re
from dataclasses import dataclass, field

from apps.systems.models import CustomerMatchRule

# A shared mailbox domain says nothing about which company a customer is.
FREE_MAIL_DOMAINS = frozenset(
    {"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com", "icloud.com", "aol.com"}
    | {"proton.me", "protonmail.com", "gmx.de", "gmx.net", "web.de", "mail.com"}
)


@dataclass(frozen=True)
class CustomerCandidate:
    """A customer record in a target that may be ours."""

    id: str
    name: str = ""
    email: str = ""
    tax_id: str = ""
    external_id: str = ""  # what the target holds in its external-ID field (our customer number, if ours)
    subsidiary_id: str = ""  # the legal entity it belongs to in the target, where the target has one
    data: dict = field(default_factory=dict, compare=False, repr=False)

    def describe(self) -> str:
        details = [value for value in (self.email, f"tax ID {self.tax_id}" if self.tax_id else "") if value]
        return f"{self.id} “{self.name}”" + (f" ({', '.join(details)})" if details else "")


@dataclass(frozen=True)
class CustomerMatch:
    """What the rules found: the rule that decided and the records it found (one: linked; several: ambiguous)."""

    rule: str
    found: tuple[CustomerCandidate, ...]

    @property
    def unique(self) -> CustomerCandidate | None:
        return self.found[0] if len(self.found) == 1 else None

    def as_output(self) -> dict:
        return {"rule": self.rule, "candidates": [candidate.id for candidate in self.found]}


def _name(value: str) -> str:
    return " ".join((value or "").split()).casefold()


def _tax_id(value: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", value or "").upper()


def _email(value: str) -> str:
    return (value or "").strip().lower()


def _domain(value: str) -> str:
    email = _email(value)
    domain = email.rpartition("@")[2] if "@" in email else ""
    return "" if domain in FREE_MAIL_DOMAINS else domain


def _same(rule: str, candidate: CustomerCandidate, *, number, name, email, tax_id, subsidiary_id) -> bool:
    if rule == CustomerMatchRule.EXTERNAL_ID:
        return bool(number) and (candidate.external_id == number or candidate.id == number)
    if rule == CustomerMatchRule.TAX_ID:
        return bool(_tax_id(tax_id)) and _tax_id(candidate.tax_id) == _tax_id(tax_id)
    if rule == CustomerMatchRule.EMAIL:
        return bool(_email(email)) and _email(candidate.email) == _email(email)
    if rule == CustomerMatchRule.EMAIL_DOMAIN:
        return bool(_domain(email)) and _domain(candidate.email) == _domain(email)
    if rule == CustomerMatchRule.NAME:
        other_entity = subsidiary_id and candidate.subsidiary_id and candidate.subsidiary_id != subsidiary_id
        return bool(_name(name)) and _name(candidate.name) == _name(name) and not other_entity
    raise ValueError(f"unknown match rule {rule!r}")


def match_customer(
    candidates, *, rules, number: str, name: str, email: str = "", tax_id: str = "", subsidiary_id: str = ""
) -> CustomerMatch | None:
    """The firm's rules applied in order to the target's candidates; None when no rule finds anything."""
    unique = {candidate.id: candidate for candidate in candidates}.values()
    for rule in rules:
        found = tuple(
            candidate
            for candidate in unique
            if _same(rule, candidate, number=number, name=name, email=email, tax_id=tax_id, subsidiary_id=subsidiary_id)
        )
        if found:
            return CustomerMatch(str(rule), found)
    return None

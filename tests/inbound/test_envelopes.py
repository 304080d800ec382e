"""Delivery envelopes: the formats a profile may name are exactly the ones inbound can cut into events."""

import pytest

from apps.inbound.envelopes import SPLITTERS, split_delivery
from apps.mapping.profiles.catalogue import DELIVERY_SCHEMES
from apps.mapping.profiles.validation import validate_spec

SPEC = {
    "vendor": "acme-crm",
    "event_types": ["thing.happened"],
    "commands": [
        {"type": "resource.changed", "fields": {"resource_external_id": "id", "name": "name", "active": "active"}}
    ],
}


def test_profiles_accept_exactly_the_delivery_formats_inbound_can_split():
    assert set(DELIVERY_SCHEMES) == set(SPLITTERS)


@pytest.mark.parametrize("scheme", sorted(SPLITTERS))
def test_a_profile_naming_any_format_inbound_splits_is_valid(scheme):
    assert validate_spec({**SPEC, "delivery": scheme}) == []


def test_a_profile_naming_a_format_inbound_cannot_split_is_refused_with_the_known_formats():
    problems = validate_spec({**SPEC, "delivery": "carrier-pigeon"})

    assert len(problems) == 1
    assert "'carrier-pigeon' is not a delivery format" in problems[0]
    assert all(scheme in problems[0] for scheme in SPLITTERS)


def test_splitting_with_an_unknown_format_names_the_formats_inbound_knows():
    with pytest.raises(ValueError, match="Unknown delivery scheme 'carrier-pigeon'") as raised:
        split_delivery("carrier-pigeon", b"{}")

    assert all(scheme in str(raised.value) for scheme in SPLITTERS)

"""The demo records are loaded from a table of sections: references are found within their parent, keys are required."""

import pytest

from apps.canonical.models import ContractLine, Customer
from apps.demo.services import DemoDataError, demo_data_load

pytestmark = pytest.mark.django_db

FIRM = (
    "legal_entities:\n"
    "  - {code: NW-US, name: Northwind, country: US, currency: USD}\n"
    "customers:\n"
    "  - {number: C-1, name: Acme, currency: USD, legal_entity: NW-US}\n"
)


def test_an_amendment_is_found_only_among_its_own_contracts_amendments(tmp_path):
    records = tmp_path / "records.yaml"
    records.write_text(
        FIRM + "contracts:\n"
        "  - number: K-1\n"
        "    name: First\n"
        "    customer: C-1\n"
        "    legal_entity: NW-US\n"
        "    contract_type: fixed_fee\n"
        "    currency: USD\n"
        "    start_date: 2026-01-01\n"
        "    amendments: [{version: 2, effective_from: 2026-04-01, description: Bigger}]\n"
        "  - number: K-2\n"
        "    name: Second\n"
        "    customer: C-1\n"
        "    legal_entity: NW-US\n"
        "    contract_type: fixed_fee\n"
        "    currency: USD\n"
        "    start_date: 2026-01-01\n"
        "    lines: [{line_number: 1, description: Scope, billing_method: fixed_fee, amount: '10.00', currency: USD,\n"
        "             introduced_by: 2}]\n",
        encoding="utf-8",
    )
    with pytest.raises(
        DemoDataError, match="contract K-2 line 1 refers to contract amendment '2', which does not exist"
    ):
        demo_data_load(path=records)
    assert not ContractLine.objects.exists()


def test_a_record_without_its_key_is_refused_with_the_section_named(tmp_path):
    records = tmp_path / "records.yaml"
    records.write_text(FIRM + "  - {name: Nameless Ltd, currency: USD}\n", encoding="utf-8")
    with pytest.raises(DemoDataError, match="a record in customers has no number"):
        demo_data_load(path=records)
    assert not Customer.objects.exists()


def test_a_reference_with_a_note_says_which_reference_is_wrong(tmp_path):
    records = tmp_path / "records.yaml"
    records.write_text(FIRM + "  - {number: C-2, name: Child, currency: USD, parent: C-404}\n", encoding="utf-8")
    with pytest.raises(DemoDataError, match=r"customer C-2 \(parent\) refers to customer 'C-404'"):
        demo_data_load(path=records)

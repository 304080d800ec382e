"""Match before create: the firm's rules, in their order, decide whether a target's customer is ours."""

from apps.connectors.matching import CustomerCandidate, match_customer

OURS = {"number": "C-1001", "name": "Globex  Corporation", "email": "AP@globex.example", "tax_id": "GB 123 4567 89"}


def test_the_first_rule_that_finds_anything_decides():
    by_name = CustomerCandidate("cb_1", name="globex corporation")
    by_tax = CustomerCandidate("cb_2", name="Globex Corp (old)", tax_id="GB123456789")
    match = match_customer([by_name, by_tax], rules=["tax_id", "name"], **OURS)
    assert match.rule == "tax_id" and match.unique == by_tax
    match = match_customer([by_name, by_tax], rules=["name", "tax_id"], **OURS)
    assert match.rule == "name" and match.unique == by_name


def test_our_number_in_the_targets_id_or_external_id_field_matches():
    assert match_customer([CustomerCandidate("C-1001")], rules=["external_id"], **OURS).unique.id == "C-1001"
    found = CustomerCandidate("ns-77", external_id="C-1001")
    assert match_customer([found], rules=["external_id"], **OURS).unique == found


def test_an_email_domain_matches_but_a_free_mail_domain_never_does():
    colleague = CustomerCandidate("cb_1", email="finance@globex.example")
    assert match_customer([colleague], rules=["email_domain"], **OURS).unique == colleague
    assert match_customer([colleague], rules=["email"], **OURS) is None
    gmail = CustomerCandidate("cb_2", email="someone@gmail.com")
    assert match_customer([gmail], rules=["email_domain"], **(OURS | {"email": "ap.globex@gmail.com"})) is None


def test_the_same_name_in_another_legal_entity_is_not_a_match():
    other = CustomerCandidate("ns-1", name="Globex Corporation", subsidiary_id="2")
    same = CustomerCandidate("ns-2", name="Globex Corporation", subsidiary_id="1")
    match = match_customer([other, same], rules=["name"], subsidiary_id="1", **OURS)
    assert match.unique == same


def test_several_records_found_by_one_rule_are_ambiguous():
    found = [CustomerCandidate("cb_1", name="Globex Corporation"), CustomerCandidate("cb_2", name="GLOBEX corporation")]
    match = match_customer(found, rules=["name"], **OURS)
    assert match.unique is None and [c.id for c in match.found] == ["cb_1", "cb_2"]


def test_nothing_found_means_the_customer_is_new_and_empty_values_never_match():
    blank = CustomerCandidate("cb_1")
    assert match_customer([blank], rules=["tax_id", "email", "email_domain"], **OURS) is None
    assert match_customer([blank], rules=["tax_id", "name"], number="C-9", name="", email="", tax_id="") is None

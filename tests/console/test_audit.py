"""The audit trail: the history endpoint without a query per row, and the console's audit browser."""

import pytest

from apps.core.context import audit_context
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_history_endpoint_reads_forty_rows_in_a_constant_number_of_queries(
    api_as, finance_user, steward, django_assert_max_num_queries
):
    customer = factories.customer(name="Globex")
    for n in range(40):
        with audit_context(actor=steward, reason=f"Rename {n}"):
            customer.name = f"Globex {n}"
            customer.save()
    with django_assert_max_num_queries(8):
        rows = api_as(finance_user).get(f"/api/v1/customers/{customer.pk}/history/?limit=40").json()["results"]
    assert len(rows) == 40
    assert rows[0]["changes"] == [{"field": "name", "old": "Globex 38", "new": "Globex 39", "masked": False}]
    assert rows[0]["history_change_reason"] == "Rename 39"
    assert rows[-1]["changes"] == [{"field": "name", "old": "Globex", "new": "Globex 0", "masked": False}]


def test_the_history_of_an_ownership_rule_shows_which_systems_were_granted(api_as, auditor, steward, systems):
    rule = factories.ownership_rule("customer", systems["crm"])
    with audit_context(actor=steward, reason="NetSuite keeps the AR status"):
        rule.may_update.add(systems["erp"])
        rule.save()
    rows = api_as(auditor).get(f"/api/v1/ownership-rules/{rule.pk}/history/").json()["results"]
    grants = [change for row in rows for change in row["changes"] if change["field"] == "may_update"]
    assert grants == [{"field": "may_update", "old": [], "new": [systems["erp"].pk], "masked": False}]

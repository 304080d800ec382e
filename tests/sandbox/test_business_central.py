"""The Business Central sandbox: OData collections with nextLink paging, If-Match ETags, OData errors."""

from apps.sandbox.seeds import BC_COMPANY_ID
from apps.sandbox.services import sandbox_faults_set

COMPANY = f"companies({BC_COMPANY_ID})/"


def test_customers_page_with_an_odata_next_link(vendor):
    bc = vendor("business-central")
    for n in range(3):
        assert bc.post(COMPANY + "customers", {"displayName": f"Customer {n}"}).status_code == 201
    first = bc.get(COMPANY + "customers", headers={"Prefer": "odata.maxpagesize=2"})
    body = first.json()
    assert len(body["value"]) == 2 and "$skiptoken=2" in body["@odata.nextLink"]
    rest = bc.client.get(body["@odata.nextLink"], headers={"Authorization": "Bearer test-token"}).json()
    assert len(rest["value"]) == 1 and "@odata.nextLink" not in rest


def test_a_patch_needs_the_current_etag(vendor):
    bc = vendor("business-central")
    customer = bc.post(COMPANY + "customers", {"displayName": "Initech"}).json()
    path = COMPANY + f"customers({customer['id']})"
    assert bc.patch(path, {"email": "a@initech.example"}).status_code == 400  # no If-Match
    fresh = bc.patch(path, {"email": "a@initech.example"}, headers={"If-Match": customer["@odata.etag"]})
    assert fresh.status_code == 200
    stale = bc.patch(path, {"email": "b@initech.example"}, headers={"If-Match": customer["@odata.etag"]})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "Request_EntityChanged"


def test_a_duplicate_number_and_an_unknown_property_are_refused_in_odata_shape(vendor):
    bc = vendor("business-central")
    bc.post(COMPANY + "customers", {"displayName": "Initech", "number": "C1"})
    twin = bc.post(COMPANY + "customers", {"displayName": "Initech 2", "number": "C1"})
    assert twin.json()["error"]["code"] == "Internal_EntityWithSameKeyExists"
    odd = bc.post(COMPANY + "customers", {"displayName": "X", "shoeSize": 9})
    assert odd.json()["error"]["code"] == "BadRequest_PropertyNotFound"


def test_an_invoice_with_lines_is_totalled_with_its_tax_group_and_posted(vendor):
    bc = vendor("business-central")
    customer = bc.post(COMPANY + "customers", {"displayName": "Initech"}).json()
    invoice = bc.post(
        COMPANY + "salesInvoices",
        {
            "customerId": customer["id"],
            "externalDocumentNumber": "INV-1",
            "salesInvoiceLines": [
                {"lineObjectNumber": "SVC-CONSULTING", "quantity": 2, "unitPrice": 500, "taxCode": "VAT20"}
            ],
        },
    ).json()
    assert invoice["totalAmountIncludingTax"] == 1200 and invoice["status"] == "Draft"
    assert bc.post(COMPANY + f"salesInvoices({invoice['id']})/Microsoft.NAV.post").status_code == 204
    assert bc.get(COMPANY + f"salesInvoices({invoice['id']})").json()["status"] == "Open"


def test_reject_next_answers_each_documented_error(vendor):
    bc = vendor("business-central")
    sandbox_faults_set("business-central", reject_next=1, reject_with="auth")
    answer = bc.get(COMPANY + "customers")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "Authentication_InvalidCredentials"

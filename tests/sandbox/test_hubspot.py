"""The HubSpot sandbox speaks CRM v3: objects, associations, batch read with 207, rate limit headers, errors."""

from apps.sandbox.services import sandbox_faults_set


def company_and_deal(hubspot):
    company = hubspot.post("objects/companies", {"properties": {"name": "Initech", "domain": "initech.example"}})
    assert company.status_code == 201, company.content
    deal = hubspot.post(
        "objects/deals",
        {
            "properties": {"dealname": "ERP rollout", "amount": 1000, "dealstage": "closedwon"},
            "associations": [{"to": {"id": company.json()["id"]}, "types": [{"associationTypeId": 5}]}],
        },
    )
    assert deal.status_code == 201, deal.content
    return company.json(), deal.json()


def test_a_deal_reads_back_with_string_properties_and_its_company_association(vendor):
    hubspot = vendor("hubspot")
    company, deal = company_and_deal(hubspot)
    answer = hubspot.get(f"objects/deals/{deal['id']}", {"properties": "dealname,amount", "associations": "companies"})
    body = answer.json()
    assert body["properties"]["amount"] == "1000"
    assert body["associations"]["companies"]["results"] == [{"id": company["id"], "type": "deal_to_company"}]
    links = hubspot.get(f"objects/companies/{company['id']}/associations/deals").json()
    assert links["results"] == [{"id": deal["id"], "type": "company_to_deal"}]


def test_batch_read_answers_207_naming_the_ids_it_does_not_have(vendor):
    hubspot = vendor("hubspot")
    company, _ = company_and_deal(hubspot)
    answer = hubspot.post("objects/companies/batch/read", {"inputs": [{"id": company["id"]}, {"id": "999"}]})
    assert answer.status_code == 207
    assert [row["id"] for row in answer.json()["results"]] == [company["id"]]
    assert answer.json()["errors"][0]["context"] == {"ids": ["999"]}


def test_lists_page_with_after(vendor):
    hubspot = vendor("hubspot")
    for n in range(3):
        hubspot.post("objects/companies", {"properties": {"name": f"C{n}"}})
    first = hubspot.get("objects/companies", {"limit": 2}).json()
    second = hubspot.get("objects/companies", {"limit": 2, "after": first["paging"]["next"]["after"]}).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1 and "paging" not in second


def test_a_bad_property_is_a_validation_error_in_hubspots_shape(vendor):
    hubspot = vendor("hubspot")
    answer = hubspot.post("objects/deals", {"properties": {"dealname": "X", "dealstage": "won-ish"}})
    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"
    assert "INVALID_OPTION" in answer.json()["message"]


def test_answers_carry_rate_limit_headers_and_a_throttle_is_429_with_retry_after(vendor):
    hubspot = vendor("hubspot")
    sandbox_faults_set("hubspot", throttle_next=1, retry_after_seconds=4)
    answer = hubspot.get("objects/deals")
    assert answer.status_code == 429
    assert answer["Retry-After"] == "4"
    assert answer.json()["category"] == "RATE_LIMITS"
    assert answer["X-HubSpot-RateLimit-Max"] == "100"
    assert hubspot.get("objects/deals")["X-HubSpot-RateLimit-Secondly"] == "10"


def test_reject_next_answers_hubspots_locked_and_conflict(vendor):
    hubspot = vendor("hubspot")
    sandbox_faults_set("hubspot", reject_next=1, reject_with="concurrency")
    locked = hubspot.get("objects/deals")
    assert locked.status_code == 423 and locked.json()["category"] == "LOCKED"
    hubspot.post("objects/contacts", {"properties": {"email": "a@b.example"}})
    twin = hubspot.post("objects/contacts", {"properties": {"email": "A@b.example"}})
    assert twin.status_code == 409 and twin.json()["category"] == "CONFLICT"

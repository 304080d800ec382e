"""The Kantata-like PSA sandbox: workspaces with unique external references, time entries, stories, envelopes."""

import pytest

from apps.sandbox.services import sandbox_records


@pytest.fixture
def psa(vendor):
    return vendor("psa")


WORKSPACE = {
    "title": "Northwind ERP rollout",
    "external_reference": "PRJ-1042",
    "start_date": "2026-11-01",
    "due_date": "2027-03-31",
    "price_in_cents": 12500000,
    "currency": "USD",
    "account_name": "Northwind Traders",
    "billing_method": "time_and_materials",
    "rate_card": "RC-2026",
}


def create_workspace(psa, **fields):
    response = psa.post("workspaces.json", {"workspace": {**WORKSPACE, **fields}})
    assert response.status_code == 200, response.content
    return response.json()["results"][0]["id"]


def test_creating_a_workspace_answers_the_kantata_envelope(psa):
    response = psa.post("workspaces.json", {"workspace": WORKSPACE})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    [result] = body["results"]
    assert result["key"] == "workspaces"
    workspace = body["workspaces"][result["id"]]
    assert workspace["id"] == result["id"]
    assert workspace["title"] == "Northwind ERP rollout"
    assert workspace["price_in_cents"] == 12500000
    assert workspace["external_reference"] == "PRJ-1042"


def test_a_second_workspace_with_the_same_external_reference_is_refused_and_can_be_looked_up(psa):
    first_id = create_workspace(psa)

    response = psa.post("workspaces.json", {"workspace": {**WORKSPACE, "title": "Again"}})

    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            {
                "type": "validation",
                "message": "external_reference has already been taken",
                "field": "external_reference",
            }
        ]
    }
    found = psa.get("workspaces.json", {"external_reference": "PRJ-1042"}).json()
    assert found["count"] == 1 and found["results"] == [{"key": "workspaces", "id": first_id}]
    assert psa.get("workspaces.json", {"external_reference": "PRJ-9999"}).json()["count"] == 0
    assert sandbox_records("psa", "workspaces").count() == 1


def test_a_workspace_is_rebaselined_with_put(psa):
    workspace_id = create_workspace(psa)

    response = psa.put(
        f"workspaces/{workspace_id}.json",
        {"workspace": {"due_date": "2027-06-30", "price_in_cents": 15000000, "baseline_version": 2}},
    )

    assert response.status_code == 200
    workspace = psa.get(f"workspaces/{workspace_id}.json").json()["workspaces"][workspace_id]
    assert (workspace["due_date"], workspace["price_in_cents"], workspace["baseline_version"]) == (
        "2027-06-30",
        15000000,
        2,
    )
    assert workspace["title"] == WORKSPACE["title"]


def test_a_missing_title_is_a_validation_error_naming_the_field(psa):
    response = psa.post("workspaces.json", {"workspace": {"external_reference": "PRJ-1"}})

    assert response.status_code == 400
    assert response.json()["errors"][0] == {"type": "validation", "message": "title can't be blank", "field": "title"}


def test_a_due_date_before_the_start_is_refused(psa):
    response = psa.post("workspaces.json", {"workspace": {**WORKSPACE, "due_date": "2026-01-01"}})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "due_date"


def test_time_entries_and_stories_are_seeded_and_fetched_for_thin_notifications(psa):
    workspace_id = create_workspace(psa)
    story = psa.post(
        "stories.json", {"story": {"workspace_id": workspace_id, "title": "Go-live", "story_type": "milestone"}}
    )
    story_id = story.json()["results"][0]["id"]
    entry = psa.post(
        "time_entries.json",
        {
            "time_entry": {
                "workspace_id": workspace_id,
                "story_id": story_id,
                "date_performed": "2026-11-03",
                "time_in_minutes": 450,
                "user_id": 77,
                "approved": True,
            }
        },
    )
    entry_id = entry.json()["results"][0]["id"]

    fetched = psa.get(f"time_entries/{entry_id}.json").json()
    assert fetched["results"] == [{"key": "time_entries", "id": entry_id}]
    assert fetched["time_entries"][entry_id]["time_in_minutes"] == 450
    assert fetched["time_entries"][entry_id]["billable"] is True  # Kantata's default
    assert fetched["time_entries"][entry_id]["user_id"] == "77"
    story_body = psa.get(f"stories/{story_id}.json").json()
    assert story_body["stories"][story_id]["story_type"] == "milestone"


def test_a_time_entry_for_an_unknown_workspace_is_refused(psa):
    response = psa.post(
        "time_entries.json",
        {"time_entry": {"workspace_id": "999", "date_performed": "2026-11-03", "time_in_minutes": 60}},
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "workspace_id"


def test_lists_are_paginated_with_page_and_per_page(psa):
    ids = [create_workspace(psa, external_reference=f"PRJ-{n}", title=f"Project {n}") for n in range(5)]

    first = psa.get("workspaces.json", {"per_page": 2}).json()
    third = psa.get("workspaces.json", {"per_page": 2, "page": 3}).json()

    assert first["count"] == 5
    assert [result["id"] for result in first["results"]] == ids[:2]
    assert [result["id"] for result in third["results"]] == ids[4:]
    assert first["meta"]["page_count"] == 3


def test_an_unknown_record_is_not_found_in_kantata_shape(psa):
    response = psa.get("workspaces/123.json")

    assert response.status_code == 404
    assert response.json()["errors"][0]["type"] == "not_found"

"""Fault injection: failures, 429 bursts and windows, timeouts, dropped answers, random errors, concurrency."""

import datetime
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from apps.sandbox.models import Fault, SandboxSystem
from apps.sandbox.services import sandbox_calls, sandbox_faults_set, sandbox_records

from .conftest import auth_header

CUSTOMER = {"companyName": "Northwind", "subsidiary": {"id": "1"}, "currency": {"id": "1"}}


def test_fail_next_answers_503_before_doing_anything(vendor):
    crm = vendor("crm")
    sandbox_faults_set("crm", fail_next=2)

    answers = [crm.post("sobjects/Account", {"Name": f"A{n}"}) for n in range(3)]

    assert [answer.status_code for answer in answers] == [503, 503, 201]
    assert answers[0].json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert sandbox_records("crm", "Account").count() == 1
    assert [call.fault for call in sandbox_calls("crm")] == [Fault.FAILED, Fault.FAILED, ""]
    assert SandboxSystem.objects.get(kind="crm").fail_next == 0


def test_throttle_next_answers_429_with_retry_after_in_the_vendors_shape(vendor):
    billing = vendor("billing")
    sandbox_faults_set("billing", throttle_next=2, retry_after_seconds=0)

    answers = [billing.get("customers") for _ in range(3)]

    assert [answer.status_code for answer in answers] == [429, 429, 200]
    assert answers[0]["Retry-After"] == "0"
    assert answers[0].json()["api_error_code"] == "api_request_limit_exceeded"
    assert answers[0].json()["http_status_code"] == 429


def test_requests_per_minute_serves_that_many_calls_in_any_60_seconds_then_answers_429(vendor):
    billing = vendor("billing")
    sandbox_faults_set("billing", requests_per_minute=3)

    answers = [billing.get("customers") for _ in range(5)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    assert answers[3].json()["api_error_code"] == "api_request_limit_exceeded"
    assert 59 <= int(answers[3]["Retry-After"]) <= 60  # when the first of the three ages out of the window
    assert [call.fault for call in sandbox_calls("billing")][3:] == [Fault.RATE_LIMITED, Fault.RATE_LIMITED]

    calls = sandbox_calls("billing").order_by("received_at")
    first = calls.first()
    first.received_at -= datetime.timedelta(seconds=61)  # a minute later, the first call left the window
    first.save()
    assert billing.get("customers").status_code == 200
    assert billing.get("customers").status_code == 429

    sandbox_faults_set("billing", requests_per_minute=0)
    assert billing.get("customers").status_code == 200


def test_inside_a_429_window_every_call_is_throttled_with_the_seconds_remaining(vendor):
    erp = vendor("erp")
    sandbox_faults_set("erp", throttle_next=1, retry_after_seconds=60)

    first = erp.put("customer/eid:C-1", CUSTOMER)
    during = [erp.put("customer/eid:C-1", CUSTOMER), erp.get("subsidiary")]

    assert first.status_code == 429 and first["Retry-After"] == "60"
    assert first.json()["o:errorDetails"][0]["o:errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert [answer.status_code for answer in during] == [429, 429]
    assert all(1 <= int(answer["Retry-After"]) <= 60 for answer in during)
    assert [call.fault for call in sandbox_calls("erp")] == [
        Fault.THROTTLED,
        Fault.THROTTLE_WINDOW,
        Fault.THROTTLE_WINDOW,
    ]
    assert sandbox_records("erp", "customer").count() == 0

    sandbox_faults_set("erp", throttled_until=None)  # the window is over
    assert erp.put("customer/eid:C-1", CUSTOMER).status_code == 204


def test_error_rate_with_a_seed_fails_the_same_calls_every_time(vendor):
    psa = vendor("psa")

    def run(prefix: str) -> list[int]:
        sandbox_faults_set("psa", error_rate=0.5, random_seed=7)
        return [psa.post("workspaces.json", {"workspace": {"title": f"{prefix}{n}"}}).status_code for n in range(12)]

    first, second = run("a"), run("b")

    assert first == second
    assert set(first) - {200} <= {500, 503}
    assert 200 in first and (500 in first or 503 in first)
    assert sandbox_records("psa", "workspaces").count() == 2 * first.count(200)  # failed calls did nothing
    assert sandbox_calls("psa", fault=Fault.ERROR_RATE).count() == 2 * (12 - first.count(200))


def test_latency_is_added_to_every_answer(vendor):
    sandbox_faults_set("crm", latency_ms=150)

    vendor("crm").get("sobjects/Account")

    assert sandbox_calls("crm").get().duration_ms >= 150


def test_faults_are_set_read_and_reset_over_http(client, sandbox):
    headers = {"Authorization": auth_header("erp")}

    set_answer = client.post(
        "/sandbox/erp/_faults", {"fail_next": 3, "error_rate": 0.25}, content_type="application/json", headers=headers
    )
    read = client.get("/sandbox/erp/_faults", headers=headers)
    refused = client.post("/sandbox/erp/_faults", {"explode": 1}, content_type="application/json", headers=headers)
    anonymous = client.post("/sandbox/erp/_faults", {"fail_next": 1}, content_type="application/json")
    reset = client.delete("/sandbox/erp/_faults", headers=headers)

    assert set_answer.status_code == 200
    assert (read.json()["fail_next"], read.json()["error_rate"]) == (3, 0.25)
    assert refused.status_code == 400
    assert "explode" in refused.json()["o:errorDetails"][0]["detail"]
    assert anonymous.status_code == 401
    assert (reset.json()["fail_next"], reset.json()["error_rate"]) == (0, 0)
    assert not sandbox_calls("erp").exists()  # control calls are not part of the vendor's call log


def test_an_out_of_range_setting_is_refused_with_a_reason(sandbox):
    from apps.sandbox.services import SandboxSettingError

    with pytest.raises(SandboxSettingError, match="error_rate"):
        sandbox_faults_set("crm", error_rate=1.5)
    assert SandboxSystem.objects.get(kind="crm").error_rate == 0


# --- over real HTTP -------------------------------------------------------------------------------------


def test_timeout_next_sleeps_so_the_client_times_out_and_nothing_is_done(live_vendor):
    erp = live_vendor("erp")
    sandbox_faults_set("erp", timeout_next=1, timeout_seconds=2)

    with pytest.raises(requests.exceptions.ReadTimeout):
        erp.request("PUT", "customer/eid:C-1", CUSTOMER, timeout=(5, 0.5))

    assert sandbox_records("erp", "customer").count() == 0
    call = sandbox_calls("erp").get()
    assert (call.fault, call.response_status) == (Fault.TIMEOUT, 504)
    assert erp.request("PUT", "customer/eid:C-1", CUSTOMER).status_code == 204


def test_drop_next_commits_the_write_though_the_client_never_sees_the_answer(live_vendor):
    erp = live_vendor("erp")
    sandbox_faults_set("erp", drop_next=1, drop_seconds=2)
    headers = {"Idempotency-Key": "cust-c1"}

    with pytest.raises(requests.exceptions.ReadTimeout):
        erp.request("PUT", "customer/eid:C-1", CUSTOMER, headers=headers, timeout=(5, 0.5))

    assert sandbox_records("erp", "customer").count() == 1
    retry = erp.request("PUT", "customer/eid:C-1", CUSTOMER, headers=headers)
    assert retry.status_code == 204
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["Location"].endswith(f"/customer/{sandbox_records('erp', 'customer').get().internal_id}")
    assert [(call.fault, call.replayed) for call in sandbox_calls("erp")] == [(Fault.DROPPED, False), ("", True)]


def test_a_read_does_not_consume_a_drop(live_vendor):
    erp = live_vendor("erp")
    sandbox_faults_set("erp", drop_next=1, drop_seconds=2)

    assert erp.request("GET", "subsidiary", timeout=(5, 1)).status_code == 200
    assert SandboxSystem.objects.get(kind="erp").drop_next == 1


def _in_parallel(count: int, call):
    barrier = threading.Barrier(count)

    def run(n):
        barrier.wait()
        return call(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_calls_consume_each_fault_exactly_once(live_vendor):
    crm = live_vendor("crm")
    sandbox_faults_set("crm", fail_next=5)

    statuses = _in_parallel(12, lambda n: crm.request("POST", "sobjects/Account", {"Name": f"A{n}"}).status_code)

    assert sorted(statuses) == [201] * 7 + [503] * 5
    assert sandbox_calls("crm", fault=Fault.FAILED).count() == 5
    assert sandbox_records("crm", "Account").count() == 7
    assert SandboxSystem.objects.get(kind="crm").fail_next == 0


def test_concurrent_retries_with_one_key_create_one_record(live_vendor):
    erp = live_vendor("erp")

    answers = _in_parallel(
        8, lambda n: erp.request("PUT", "customer/eid:C-1", CUSTOMER, headers={"Idempotency-Key": "same-key"})
    )

    assert {answer.status_code for answer in answers} == {204}
    assert len({answer.headers["Location"] for answer in answers}) == 1
    assert sandbox_records("erp", "customer").count() == 1
    assert sandbox_calls("erp", replayed=True).count() == 7


def test_concurrent_creates_get_distinct_ids_without_errors(live_vendor):
    psa = live_vendor("psa")

    answers = _in_parallel(
        10,
        lambda n: psa.request(
            "POST", "workspaces.json", {"workspace": {"title": f"W{n}", "external_reference": f"P{n}"}}
        ),
    )

    assert {answer.status_code for answer in answers} == {200}
    ids = {answer.json()["results"][0]["id"] for answer in answers}
    assert len(ids) == 10

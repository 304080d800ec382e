"""Resetting the sandboxes, and what the admin lets people see and change."""

from django.core.management import call_command
from django.urls import reverse

from apps.sandbox.models import SandboxCall, SandboxRecord, SandboxSystem
from apps.sandbox.services import sandbox_calls, sandbox_faults_set, sandbox_records, sandbox_system_configure


def test_sandbox_reset_clears_records_calls_and_faults_and_reseeds_reference_data(vendor):
    erp = vendor("erp")
    erp.put("customer/eid:C-1", {"companyName": "N", "subsidiary": {"id": "1"}, "currency": {"id": "1"}})
    sandbox_faults_set("erp", fail_next=4, throttle_next=1)
    sandbox_system_configure("erp", webhook_url="http://console.test/hook")

    call_command("sandbox_reset", "--kind", "erp")

    assert sandbox_records("erp", "customer").count() == 0
    assert not sandbox_calls("erp").exists()
    system = SandboxSystem.objects.get(kind="erp")
    assert (system.fail_next, system.throttle_next) == (0, 0)
    assert system.webhook_url == "http://console.test/hook"  # configuration is not a fault
    assert sandbox_records("erp", "subsidiary").count() == 3
    assert sandbox_records("erp", "currencyRate").count() == 12


def test_reset_of_one_kind_leaves_the_others(vendor):
    vendor("crm").post("sobjects/Account", {"Name": "Stays"})
    vendor("psa").post("workspaces.json", {"workspace": {"title": "Goes"}})

    call_command("sandbox_reset", "--kind", "psa")

    assert sandbox_records("crm", "Account").count() == 1
    assert sandbox_records("psa", "workspaces").count() == 0


def test_seeding_twice_creates_no_duplicates(sandbox):
    call_command("sandbox_reset")
    call_command("sandbox_reset")

    assert sandbox_records("erp", "currency").count() == 3
    assert SandboxSystem.objects.count() == 7  # one per kind: crm, psa, erp, billing, hubspot, stripe, business-central


def test_faults_are_edited_in_the_admin_with_a_reason(admin_client, sandbox):
    system = SandboxSystem.objects.get(kind="billing")
    url = reverse("admin:sandbox_sandboxsystem_change", args=[system.pk])
    form = {
        "required_credential": "{}",
        "latency_ms": 0,
        "error_rate": "0",
        "random_seed": "",
        "fail_next": 2,
        "throttle_next": 0,
        "retry_after_seconds": 5,
        "throttled_until_0": "",
        "throttled_until_1": "",
        "timeout_next": 0,
        "timeout_seconds": 30,
        "drop_next": 0,
        "drop_seconds": 30,
        "reject_next": 0,
        "reject_with": "validation",
        "duplicate_webhooks": 2,
        "webhook_url": "",
        "webhook_credentials": "{}",
        "change_reason": "Rehearse a billing outage for the demo",
    }

    response = admin_client.post(url, form)

    assert response.status_code == 302, response.content[:2000]
    system.refresh_from_db()
    assert (system.fail_next, system.duplicate_webhooks) == (2, 2)
    assert system.history.first().history_change_reason == "Rehearse a billing outage for the demo"


def test_records_and_calls_are_read_only_in_the_admin(admin_client, vendor):
    vendor("crm").post("sobjects/Account", {"Name": "Visible"})
    record = SandboxRecord.objects.get(kind="crm")
    call = SandboxCall.objects.get(kind="crm")

    record_page = admin_client.get(reverse("admin:sandbox_sandboxrecord_change", args=[record.pk]))
    call_page = admin_client.get(reverse("admin:sandbox_sandboxcall_change", args=[call.pk]))
    calls_list = admin_client.get(reverse("admin:sandbox_sandboxcall_changelist"))

    assert record_page.status_code == call_page.status_code == calls_list.status_code == 200
    assert b"Visible" in record_page.content
    assert b'name="_save"' not in record_page.content
    assert b'name="_save"' not in call_page.content
    assert admin_client.get(reverse("admin:sandbox_sandboxrecord_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:sandbox_sandboxcall_delete", args=[call.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert SandboxCall.objects.filter(pk=call.pk).exists()

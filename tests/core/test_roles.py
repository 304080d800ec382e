"""What each role may do in the admin and the API: auditors read everything and change nothing."""

import datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from apps.canonical.models import (
    BillingEvent,
    BillingSchedule,
    ContractAmendment,
    ContractLine,
    ExchangeRate,
    Expense,
    Invoice,
    InvoiceLine,
    Milestone,
    Opportunity,
    Payment,
    RateCardLine,
    RateCardVersion,
    RevenueSchedule,
    RevenueScheduleLine,
    Task,
    TimeEntry,
)
from apps.core.context import audit_context
from apps.mapping.models import CrossReference, ReferenceValue, SourceProfile, ValueMap, ValueMapEntry
from apps.systems.models import Route, SigningSecret
from tests import factories

pytestmark = pytest.mark.django_db

APPS = ("systems", "canonical", "mapping")


def tracked_models():
    return [
        model
        for app_label in APPS
        for model in apps.get_app_config(app_label).get_models()
        if not model.__name__.startswith("Historical")
    ]


@pytest.fixture
def world(systems, steward):
    """One record of every model, each saved twice so every history page lists two rows to compare."""
    with audit_context(actor=steward, reason="Build the test world"):
        card = factories.rate_card(
            versions=[(datetime.date(2026, 1, 1), None, "approved", {"Consultant": 150, "Architect": 220})]
        )
        version = card.versions.get()
        resource = factories.resource(role="Consultant")
        contract = factories.contract(contract_type="time_and_materials", rate_card=card)
        project = factories.project(contract=contract, project_manager=resource)
        Opportunity.objects.create(
            number="O-1", name="Deal", customer=contract.customer, currency="USD", rate_card=card
        )
        amendment = ContractAmendment.objects.create(
            contract=contract, version=2, effective_from=datetime.date(2026, 6, 1), description="Extend to December"
        )
        ContractLine.objects.create(
            contract=contract,
            line_number=1,
            service_item="CONSULTING",
            billing_method="time_and_materials",
            currency="USD",
            introduced_by=amendment,
        )
        task = Task.objects.create(project=project, code="T1", name="Discovery")
        milestone = Milestone.objects.create(
            project=project, code="M1", name="Go-live", amount=Decimal("5000"), currency="USD"
        )
        invoice = Invoice.objects.create(
            number="INV-1",
            customer=contract.customer,
            contract=contract,
            project=project,
            legal_entity=contract.legal_entity,
            issue_date=datetime.date(2026, 2, 1),
            due_date=datetime.date(2026, 3, 3),
            currency="USD",
            subtotal=Decimal("1500"),
            tax_total=Decimal("0"),
            total=Decimal("1500"),
        )
        event = BillingEvent.objects.create(
            project=project,
            contract=contract,
            milestone=milestone,
            source="time",
            event_date=datetime.date(2026, 1, 31),
            description="January time",
            quantity=Decimal("10"),
            unit_price=Decimal("150"),
            amount=Decimal("1500"),
            currency="USD",
            invoice=invoice,
        )
        InvoiceLine.objects.create(
            invoice=invoice,
            line_number=1,
            description="January time",
            unit_price=Decimal("150"),
            quantity=Decimal("10"),
            amount=Decimal("1500"),
            billing_event=event,
        )
        TimeEntry.objects.create(
            resource=resource,
            project=project,
            task=task,
            work_date=datetime.date(2026, 1, 15),
            hours=Decimal("8"),
            bill_rate=Decimal("150"),
            cost_rate=Decimal("75"),
            currency="USD",
            billing_event=event,
        )
        Expense.objects.create(
            resource=resource,
            project=project,
            incurred_on=datetime.date(2026, 1, 16),
            category="travel",
            amount=Decimal("120"),
            currency="USD",
        )
        BillingSchedule.objects.create(
            project=project,
            contract=contract,
            billing_method="time_and_materials",
            start_date=project.contract.start_date,
            currency="USD",
        )
        Payment.objects.create(
            reference="PAY-1",
            customer=contract.customer,
            invoice=invoice,
            received_on=datetime.date(2026, 3, 1),
            amount=Decimal("1500"),
            currency="USD",
        )
        schedule = RevenueSchedule.objects.create(
            contract=contract, project=project, method="straight_line", total_amount=Decimal("12000"), currency="USD"
        )
        RevenueScheduleLine.objects.create(schedule=schedule, period_start=datetime.date(2026, 1, 1), amount=1000)
        SigningSecret.objects.create(system=systems["crm"], label="primary", reference={"env": "IC_SECRET_SF_SECRET"})
        factories.ownership_rule("customer", systems["crm"], may_update=[systems["erp"]])
        Route.objects.create(target_kind="erp", system=systems["erp"], effective_from=datetime.date(2026, 1, 1))
        CrossReference.objects.create(
            system=systems["erp"], object_type="customer", object_id=contract.customer_id, external_id="NS-1"
        )
        value_map = ValueMap.objects.create(name="region-subsidiary", source_label="region", target_label="subsidiary")
        ValueMapEntry.objects.create(
            value_map=value_map, source_value="EMEA", target_value="2", effective_from=datetime.date(2026, 1, 1)
        )
        SourceProfile.objects.create(name="hubspot-deal", vendor="hubspot", spec={"object": "opportunity"})
        ReferenceValue.objects.create(system=systems["erp"], kind="subsidiary", external_id="2", code="UK")
        ExchangeRate.objects.create(
            base="GBP", quote="USD", rate=Decimal("1.27"), effective_date=datetime.date(2026, 1, 2)
        )
    with audit_context(actor=steward, reason="Touch every record once"):
        for model in tracked_models():
            assert model.objects.exists(), f"the test world has no {model.__name__}; add one"
            for obj in model.objects.all():
                obj.save()
    return {"version": version}


def admin_urls(model, obj):
    opts = model._meta
    prefix = f"admin:{opts.app_label}_{opts.model_name}"
    return {
        "changelist": reverse(f"{prefix}_changelist"),
        "change": reverse(f"{prefix}_change", args=[obj.pk]),
        "history": reverse(f"{prefix}_history", args=[obj.pk]),
        "as_of": reverse(f"{prefix}_simple_history", args=[obj.pk, obj.history.earliest().history_id]),
        "delete": reverse(f"{prefix}_delete", args=[obj.pk]),
        "add": reverse(f"{prefix}_add"),
    }


def test_every_model_of_the_three_apps_has_an_admin():
    missing = [model.__name__ for model in tracked_models() if not admin.site.is_registered(model)]
    assert missing == []


def test_every_editable_field_is_on_the_admin_form(rf, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw-for-tests-only")
    request = rf.get("/")
    request.user = root
    for model in tracked_models():
        model_admin = admin.site._registry[model]
        shown = {name for _, options in model_admin.get_fieldsets(request) for name in options["fields"]}
        editable = {field.name for field in model._meta.get_fields() if getattr(field, "editable", False)}
        editable -= {"id", "created_at", "updated_at"}
        assert editable <= shown, f"{model.__name__} admin leaves out {sorted(editable - shown)}"


def test_an_auditor_can_open_every_changelist_change_page_and_history(client, auditor, world):
    client.force_login(auditor)
    for model in tracked_models():
        urls = admin_urls(model, model.objects.first())
        for name in ("changelist", "change", "history", "as_of"):
            response = client.get(urls[name])
            assert response.status_code == 200, f"{model.__name__} {name}: {response.status_code}"
        change_page = client.get(urls["change"]).content.decode()
        assert 'name="_save"' not in change_page, f"{model.__name__} change page offers a Save button"
        assert "Reason for this change" not in change_page


def test_a_superuser_can_open_every_add_form_and_editable_change_form(client, django_user_model, world):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-for-tests-only"))
    # Issue 11: an approved version's rates are frozen (read-only in the admin); a draft's rate is the editable one.
    draft = RateCardVersion.objects.create(
        rate_card=world["version"].rate_card, version=2, effective_from=datetime.date(2027, 1, 1)
    )
    RateCardLine.objects.create(version=draft, role="Consultant", bill_rate=Decimal("160"), currency="USD")
    for model in tracked_models():
        example = RateCardLine.objects.get(version=draft) if model is RateCardLine else model.objects.first()
        urls = admin_urls(model, example)
        for name in ("add", "change"):
            response = client.get(urls[name])
            assert response.status_code == 200, f"{model.__name__} {name}: {response.status_code}"
            assert "Reason for this change" in response.content.decode(), f"{model.__name__} {name}"


def test_an_auditor_gets_403_on_every_write(client, auditor, world):
    client.force_login(auditor)
    for model in tracked_models():
        obj = model.objects.first()
        urls = admin_urls(model, obj)
        assert client.post(urls["change"], {"change_reason": "try"}).status_code == 403, model.__name__
        assert client.get(urls["delete"]).status_code == 403, model.__name__
        assert client.post(urls["delete"], {"post": "yes"}).status_code == 403, model.__name__
        assert client.get(urls["add"]).status_code == 403, model.__name__
        assert client.post(urls["as_of"], {}).status_code == 403, model.__name__
        bulk_delete = {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
        assert client.post(urls["changelist"], bulk_delete).status_code == 403, model.__name__
        assert model.objects.filter(pk=obj.pk).exists()


def test_an_auditor_cannot_approve_a_rate_card_version_through_the_admin_action(client, auditor, steward):
    with audit_context(actor=steward, reason="setup"):
        card = factories.rate_card(versions=[(datetime.date(2026, 1, 1), None, "draft", {"Consultant": 150})])
    version = card.versions.get()
    client.force_login(auditor)
    response = client.post(
        reverse("admin:canonical_ratecardversion_changelist"),
        {"action": "approve_versions", "_selected_action": [version.pk]},
    )
    assert response.status_code == 403
    version.refresh_from_db()
    assert version.status == RateCardVersion.Status.DRAFT


def test_the_history_page_shows_who_why_and_the_diff(client, auditor, steward, world):
    entity = factories.legal_entity()
    with audit_context(actor=steward, reason="Rename per FIN-77"):
        entity.name = "Acme North America Inc"
        entity.save()
    client.force_login(auditor)
    page = client.get(reverse("admin:canonical_legalentity_history", args=[entity.pk])).content.decode()
    assert "Rename per FIN-77" in page
    assert "sam.steward" in page
    assert "Acme North America Inc" in page


def test_the_view_as_of_page_is_read_only_even_for_a_steward(client, steward, world):
    version = world["version"]
    row = version.history.earliest()
    steward.is_staff = True
    steward.save()
    client.force_login(steward)
    url = reverse("admin:canonical_ratecardversion_simple_history", args=[version.pk, row.history_id])
    page = client.get(url).content.decode()
    assert 'name="effective_from"' not in page
    assert "Reason for this change" not in page
    response = client.post(url, {"effective_from": "2030-01-01", "change_reason": "revert"})
    assert response.status_code == 403
    version.refresh_from_db()
    assert version.effective_from == datetime.date(2026, 1, 1)


def test_a_user_without_staff_status_cannot_open_the_admin(client, delivery_user):
    client.force_login(delivery_user)
    response = client.get(reverse("admin:canonical_ratecardline_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    ("role_user", "expected"),
    [
        ("auditor", 200),
        ("finance_user", 200),
        ("delivery_user", 200),
        ("steward", 200),
        ("integration_admin", 200),
        ("outsider", 403),
    ],
)
def test_reading_canonical_records_through_the_api_needs_the_view_permission(
    request, api_as, role_user, expected, world
):
    user = request.getfixturevalue(role_user)
    assert api_as(user).get("/api/v1/rate-card-lines/").status_code == expected


@pytest.mark.parametrize(
    ("role_user", "expected"),
    [("steward", 201), ("auditor", 403), ("finance_user", 403), ("integration_admin", 403)],
)
def test_only_the_steward_writes_value_maps(request, api_as, role_user, expected):
    user = request.getfixturevalue(role_user)
    response = api_as(user).post(
        "/api/v1/value-maps/", {"name": "tax-codes", "source_label": "CRM tax", "target_label": "ERP tax"}
    )
    assert response.status_code == expected
    assert ValueMap.objects.filter(name="tax-codes").exists() == (expected == 201)


def test_an_auditor_gets_403_writing_through_the_api(api_as, auditor, world):
    client = api_as(auditor)
    version = world["version"]
    for method, url in [
        ("post", "/api/v1/rate-cards/"),
        ("patch", f"/api/v1/rate-card-versions/{version.pk}/"),
        ("delete", f"/api/v1/rate-card-versions/{version.pk}/"),
        ("post", f"/api/v1/rate-card-versions/{version.pk}/approve/"),
        ("post", "/api/v1/ownership-rules/"),
        ("post", "/api/v1/cross-references/"),
    ]:
        response = getattr(client, method)(url, {})
        assert response.status_code == 403, f"{method} {url}"
        assert response["Content-Type"] == "application/problem+json"
    assert RateCardVersion.objects.filter(pk=version.pk).exists()

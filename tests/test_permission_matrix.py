"""The permission matrix as tests: for every API endpoint, admin page and console page, one test per role
(anonymous, finance_ops, delivery_ops, mapping_steward, auditor, integration_admin) asserting what the
role may read and what it may change, and that bill and cost rates stay masked on every page and
response for roles without the rates permission.

Endpoints, admin pages and console pages are enumerated from the URL configuration, so a new one is covered (and
must fit the policy below) without editing this file. Each test collects every deviation and reports
them all at once.
"""

import datetime
import re
from decimal import Decimal
from fnmatch import fnmatch

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.urls import get_resolver, reverse
from django.utils import timezone
from drf_spectacular.generators import EndpointEnumerator
from rest_framework.test import APIClient

from apps.canonical.models import TimeEntry
from apps.canonical.services import rate_card_version_approve
from apps.core.masking import can_see_sensitive
from apps.core.models import ChangeRequest
from apps.mapping.models import SourceProfile, ValueMap, ValueMapEntry
from apps.reconciliation.models import Check, Discrepancy, PeriodSignOff, ReconciliationRun
from apps.sync.models import ExceptionGroup, RerunBatch, Transaction
from tests import factories

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "finance_ops", "delivery_ops", "mapping_steward", "auditor", "integration_admin"]

# --- the policy -------------------------------------------------------------------------------------------------
# Every role reads every API resource (roles.py grants `view` on all of them); nobody anonymous reads any.
# Who may change what, by the first path segment after /api/v1/:
STEWARD_RESOURCES = {
    "cross-references",
    "value-maps",
    "value-map-entries",
    "source-profiles",
    "rate-cards",
    "rate-card-versions",
    "rate-card-lines",
    "ownership-rules",
}
WRITERS = {
    **{resource: {"mapping_steward"} for resource in STEWARD_RESOURCES},
    # re-run, resolve, assign: the roles that work the exception queue
    "transactions": {"finance_ops", "delivery_ops", "integration_admin"},
    # deciding a change request needs the permission of its kind: a rate card request is the stewards'
    "approvals": {"mapping_steward"},
    # runs are started by finance and by the admins who run the schedules; explaining, re-running and signing
    # off a period are finance's
    "reconciliation/runs": {"finance_ops", "integration_admin"},
    "reconciliation/discrepancies": {"finance_ops"},
    "reconciliation/sign-offs": {"finance_ops"},
    "alert-rules": {"finance_ops"},
    # legal entities are reference data the stewards keep; which system a workflow writes to is the admins'
    "legal-entities": {"mapping_steward"},
    "routes": {"integration_admin"},
}
# Kept for the alert log: an alert rule is switched off (active = false), never deleted.
NEVER_DELETED = {"alert-rules"}
# Reads some roles do not get: alerts and sign-offs are finance's business; delivery ops read the figures only.
READ_REFUSED = {
    "delivery_ops": {"alert-rules", "alerts", "alert-notifications", "reconciliation/sign-offs"},
}
# Writes whose permission depends on the record (the team an exception is routed to may act on it): on a
# record that does not exist the answer is a 404 before any permission is known.
OBJECT_LEVEL = {"transactions"}
# Reads that need parameters: without them the answer is a readable 400/422, not a 403.
NEEDS_PARAMETERS = ("/api/v1/metrics/export/",)
# POSTs that write nothing (a source profile preview runs the profile on a sample): a read for every role.
READ_ONLY_POSTS = ("/preview/",)
# Authenticated by the sender's signature, not by a role (tests/inbound), and the schema pages (finding 5,
# covered where it is fixed).
NOT_ROLE_BASED = ("/api/v1/inbound/", "/api/v1/schema/", "/api/v1/docs/")

# Which records each role may create in the admin (model labels, shell patterns), stated independently of
# apps/core/roles.py so that widening a role there fails here until the matrix is updated on purpose.
ADMIN_ADDS = {
    "finance_ops": [
        "canonical.invoice",
        "canonical.invoiceline",
        "canonical.payment",
        "canonical.billingevent",
        "canonical.revenueschedule",
        "canonical.revenuescheduleline",
        "reconciliation.*",
        "metrics.alertrule",
    ],
    "delivery_ops": [
        "canonical.project",
        "canonical.task",
        "canonical.milestone",
        "canonical.timeentry",
        "canonical.expense",
        "canonical.resource",
    ],
    "mapping_steward": [
        "mapping.*",
        "canonical.ratecard",
        "canonical.ratecardversion",
        "canonical.ratecardline",
        "systems.ownershiprule",
        "canonical.legalentity",
    ],
    "auditor": [],
    "integration_admin": [
        "systems.connectedsystem",
        "systems.signingsecret",
        "systems.route",
        "django_q.*",
        "sync.*",
    ],
}

# Sentinel amounts no other value in the data comes near: if one shows up for a masked role, a rate leaked.
BILL = Decimal("987654.32")
COST = Decimal("876543.21")
SENTINELS = [re.compile(re.escape(text)) for text in ("987654.32", "987,654.32", "876543.21", "876,543.21")]


@pytest.fixture
def world(db, systems, make_user):
    """At least one row of the models people look at most, with sensitive amounts set to the sentinels."""
    card = factories.rate_card(versions=[(datetime.date(2026, 1, 1), None, "draft", {"Consultant": 150})])
    line = card.versions.get().lines.get()
    line.bill_rate, line.cost_rate = BILL, COST
    line.save()
    resource = factories.resource(cost_rate=COST)
    project = factories.project()
    TimeEntry.objects.create(
        resource=resource,
        project=project,
        work_date=datetime.date(2026, 3, 2),
        hours=Decimal("8"),
        bill_rate=BILL,
        cost_rate=COST,
    )
    factories.ownership_rule("project", systems["psa"])
    value_map = ValueMap.objects.create(name="region", source_label="region", target_label="entity")
    ValueMapEntry.objects.create(
        value_map=value_map, source_value="EMEA", target_value="ACME-UK", effective_from=datetime.date(2026, 1, 1)
    )
    # A pending rate card approval asked for by someone else, for the approvals endpoints.
    maker = make_user("mia.maker", "mapping_steward")
    rate_card_version_approve(version=card.versions.get(), actor=maker, reason="Uplift")
    assert SourceProfile.objects.exists()


def user_for(role, make_user):
    if role == "anonymous":
        return None
    return make_user(f"matrix.{role}", role, is_staff=True)


def first_pk(view_class):
    queryset = getattr(view_class, "queryset", None)
    model = Transaction if view_class.__name__ == "TransactionViewSet" else getattr(queryset, "model", None)
    if model is None:
        return None
    return model._default_manager.order_by("pk").values_list("pk", flat=True).first()


def api_endpoints():
    for path, _regex, method, callback in EndpointEnumerator().get_api_endpoints():
        if path.startswith(NOT_ROLE_BASED):
            continue
        yield path, method, callback.cls


def leaks(text: str) -> list[str]:
    return [pattern.pattern for pattern in SENTINELS if pattern.search(text)]


@pytest.mark.parametrize("role", ROLES)
def test_the_api_grants_each_role_exactly_its_reads_and_writes(role, world, make_user):
    user = user_for(role, make_user)
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    masked = user is not None and not can_see_sensitive(user)
    problems, seen_sentinel = [], False
    endpoints = sorted(api_endpoints(), key=lambda item: (item[1] == "DELETE", item[0], item[1]))
    for path, method, view_class in endpoints:
        parts = path.split("/")
        resource = "/".join(parts[3:5]) if parts[3] == "reconciliation" else parts[3]
        pk = first_pk(view_class) if "{pk}" in path else None
        url = path.replace("{pk}", str(pk or 0))
        response = getattr(client, method.lower())(url, {}, format="json", HTTP_X_CHANGE_REASON="Permission matrix")
        status = response.status_code
        label = f"{method} {url}"
        body = response.content.decode(errors="replace")
        if status >= 500:
            problems.append(f"{label}: server error {status}")
            continue
        if role == "anonymous":
            if status not in (401, 403):
                problems.append(f"{label}: anonymous got {status}, expected 401/403")
            continue
        if method == "GET" or path.endswith(READ_ONLY_POSTS):
            expected_ok = (200,) if pk or "{pk}" not in path else (200, 404)
            if method == "POST":
                expected_ok = (200, 400)  # reached the preview; an empty body is a readable 400
            if resource == "approvals" and pk and role not in WRITERS["approvals"]:
                expected_ok = (404,)  # a change request is shown only to those who may decide it, and its maker
            if path in NEEDS_PARAMETERS:
                expected_ok = (200, 400, 422)
            if resource in READ_REFUSED.get(role, set()):
                expected_ok = (403,)
            if status not in expected_ok:
                problems.append(f"{label}: {role} may read it but got {status}")
        else:
            may_write = role in WRITERS.get(resource, set()) and not (method == "DELETE" and resource in NEVER_DELETED)
            refused = status in ((403, 404) if resource == "approvals" else (403,))
            if resource in OBJECT_LEVEL and "{pk}" in path and pk is None and status == 404:
                continue
            if may_write and refused:
                problems.append(f"{label}: {role} may change {resource} but was refused ({status})")
            if not may_write and not refused:
                problems.append(f"{label}: {role} may not change {resource} but got {status}")
        if masked and leaks(body):
            problems.append(f"{label}: a sensitive amount is visible to {role}: {leaks(body)}")
        seen_sentinel = seen_sentinel or bool(leaks(body))
    assert not problems, "\n".join(problems)
    if user is not None and not masked:
        assert seen_sentinel, "roles with the rates permission should see the rates (the sentinel check works)"


def admin_pages():
    """(label, url name, args builder, kind) for every registered model admin: list, add, change, history."""
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        base = f"admin:{opts.app_label}_{opts.model_name}"
        yield model, model_admin, "changelist", f"{base}_changelist"
        yield model, model_admin, "add", f"{base}_add"
        yield model, model_admin, "change", f"{base}_change"
        yield model, model_admin, "history", f"{base}_history"


@pytest.mark.parametrize("role", ROLES)
def test_every_admin_page_shows_each_role_only_what_it_may_see(role, world, make_user):
    user = user_for(role, make_user)
    client = Client()
    if user is not None:
        client.force_login(user)
    masked = user is not None and not can_see_sensitive(user)
    request = RequestFactory().get("/admin/")
    request.user = user
    superuser_request = RequestFactory().get("/admin/")
    superuser_request.user = get_user_model()(
        username="any-superuser", is_superuser=True, is_staff=True, is_active=True
    )
    problems = []
    for model, model_admin, kind, name in admin_pages():
        opts = model._meta
        pk = None
        if kind in ("change", "history"):
            rows = model_admin.get_queryset(request) if user is not None else model._default_manager.all()
            pk = rows.order_by("pk").values_list("pk", flat=True).first()
            if pk is None:
                continue
        url = reverse(name, args=[pk] if pk is not None else [])
        response = client.get(url)
        status = response.status_code
        label = f"{kind} {opts.label}"
        if status >= 500:
            problems.append(f"{label}: server error {status}")
            continue
        if role == "anonymous":
            if status != 302 or "/login/" not in response.url:
                problems.append(f"{label}: anonymous got {status}, expected a redirect to the login page")
            continue
        may_view = user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or user.has_perm(
            f"{opts.app_label}.change_{opts.model_name}"
        )
        may_view = may_view or model_admin.has_view_permission(request)
        may_add = any(fnmatch(f"{opts.app_label}.{opts.model_name}", pattern) for pattern in ADMIN_ADDS[role])
        if kind == "add":
            if not may_add and status == 200:
                problems.append(f"{label}: {role} may not add {opts.verbose_name} but the add form opened")
            offered = model_admin.has_add_permission(superuser_request)  # some records are never added by hand
            if may_add and offered and status != 200:
                problems.append(f"{label}: {role} may add {opts.verbose_name} but got {status}")
            continue
        if may_view and status != 200:
            problems.append(f"{label}: {role} may see {opts.verbose_name_plural} but got {status}")
        if not may_view and status == 200:
            problems.append(f"{label}: {role} may not see {opts.verbose_name_plural} but the page opened")
        if masked and status == 200 and leaks(response.content.decode()):
            problems.append(f"{label}: a sensitive amount is visible to {role}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ["finance_ops", "delivery_ops", "mapping_steward", "auditor", "integration_admin"])
def test_the_roles_hold_exactly_the_groups_permissions_the_policy_expects(role):
    group = Group.objects.get(name=role)
    codenames = set(group.permissions.values_list("content_type__app_label", "codename"))
    writes = {(app, code) for app, code in codenames if not code.startswith("view_")}
    if role == "auditor":
        assert writes == set()  # reads everything, changes nothing
    assert not any(code.startswith(("add_historical", "change_historical", "delete_historical")) for _, code in writes)
    assert (("core", "view_sensitive_amounts") in codenames) == (role in ("finance_ops", "mapping_steward", "auditor"))


# --- the console --------------------------------------------------------------------------------------------------
# Every page of the `console` namespace (apps/console/urls.py), enumerated from the URL configuration. Anonymous
# people are sent to /login/ from every page but these:
CONSOLE_PUBLIC = {"login", "logout"}
# Every signed-in role reads every console page (200), except these (role -> url names answered 403):
CONSOLE_READ_REFUSED: dict[str, set[str]] = {}
# Actions (POSTs) and the roles that may take them on the console world's records; every other role is refused
# with a 403 (a page saying who can, where the action has one).
CHANGERS_OF_TRANSACTIONS = {"finance_ops", "delivery_ops", "integration_admin"}
CONSOLE_ACTIONS = {
    # the pending request is a rate card approval asked for by another steward: the stewards' kind
    "approval-approve": ({"mapping_steward"}, {"reason": "Permission matrix"}),
    "approval-reject": ({"mapping_steward"}, {"reason": "Permission matrix"}),
    # the group is routed to the stewards; the roles that change transactions act on any group
    "exception-group-rerun": ({"mapping_steward", *CHANGERS_OF_TRANSACTIONS}, {"reason": "Permission matrix"}),
    "exception-group-update": (
        {"mapping_steward", *CHANGERS_OF_TRANSACTIONS},
        {"action": "status", "status": "acknowledged", "reason": "Permission matrix"},
    ),
    # the batch was planned by someone else: only roles that may re-run control it
    "rerun-batch-control": (CHANGERS_OF_TRANSACTIONS, {"action": "cancel", "reason": "Permission matrix"}),
    "value-maps-import": ({"mapping_steward"}, {}),
    # reconciliation: finance runs, explains and signs off; the admins who run the schedules may start a run
    "reconciliation-run": ({"finance_ops", "integration_admin"}, {"period": "2026-11"}),
    "reconciliation-discrepancy-act": ({"finance_ops"}, {"reason": "Permission matrix"}),
    "reconciliation-sign-off-prepare": ({"finance_ops"}, {"period": "2026-11", "note": "Permission matrix"}),
    "reconciliation-sign-off-approve": ({"finance_ops"}, {"note": "Permission matrix"}),
}


@pytest.fixture
def console_world(world, make_user):
    """The world plus what console pages name by id: an exception group, a re-run batch, a rate card history row."""
    now = timezone.now()
    group = ExceptionGroup.objects.create(
        fingerprint="matrix",
        workflow="time_to_bill",
        title="No value map entry for region LATAM",
        owner_role="mapping_steward",
        first_seen=now,
        last_seen=now,
    )
    planner = make_user("pat.planner", "finance_ops")
    batch = RerunBatch.objects.create(description="Matrix", reason="Matrix", created_by=planner, group=group)
    run = ReconciliationRun.objects.create(
        period="2026-11",
        period_start=datetime.date(2026, 11, 1),
        period_end=datetime.date(2026, 11, 30),
        status=ReconciliationRun.Status.SUCCEEDED,
    )
    discrepancy = Discrepancy.objects.create(
        check_type=Check.INVOICE_MISSING_IN_ERP,
        business_key="INV-MATRIX",
        period="2026-11",
        period_close_date=datetime.date(2026, 11, 30),
        left_system="billing",
        right_system="erp",
        currency="USD",
        left_amount=Decimal("100"),
        difference=Decimal("100"),
        reporting_currency="USD",
        value_at_risk=Decimal("100"),
        description="Invoice INV-MATRIX is in billing but not in ERP",
        first_seen_run=run,
        last_seen_run=run,
        first_seen_at=now,
        last_seen_at=now,
    )
    sign_off = PeriodSignOff.objects.create(
        period="2026-11", run=run, figures_digest="matrix", prepared_by=planner, prepared_at=now
    )
    from_card = ChangeRequest.objects.get(status=ChangeRequest.Status.PENDING)
    rate_line = from_card.target.lines.get()
    return {
        "exception-group": {"pk": group.pk},
        "exception-group-rerun": {"pk": group.pk},
        "exception-group-update": {"pk": group.pk},
        "rerun-batch": {"pk": batch.pk},
        "rerun-batch-progress": {"pk": batch.pk},
        "rerun-batch-control": {"pk": batch.pk},
        "approval-approve": {"pk": from_card.pk},
        "approval-reject": {"pk": from_card.pk},
        "reconciliation-run-progress": {"pk": run.pk},
        "reconciliation-discrepancy-act": {"pk": discrepancy.pk, "action": "explain"},
        "reconciliation-sign-off-approve": {"pk": sign_off.pk},
        "audit-detail": {"label": "canonical.ratecardline", "history_id": rate_line.history.latest().history_id},
    }


def console_pages():
    """(url name, route pattern, whether it takes arguments) for every URL of the console namespace."""
    _prefix, resolver = get_resolver().namespace_dict["console"]
    for pattern in resolver.url_patterns:
        if pattern.name:
            yield pattern.name, str(pattern.pattern), bool(pattern.pattern.converters)


@pytest.mark.parametrize("role", ROLES)
def test_every_console_page_shows_each_role_only_what_it_may_see_and_do(role, console_world, make_user):
    user = user_for(role, make_user)
    client = Client()
    if user is not None:
        client.force_login(user)
    masked = user is not None and not can_see_sensitive(user)
    problems, seen_sentinel = [], False
    pages = sorted(console_pages(), key=lambda page: (page[0] in CONSOLE_ACTIONS, page[0]))
    for name, route, takes_arguments in pages:
        if name in CONSOLE_PUBLIC:
            continue
        kwargs = console_world.get(name)
        if takes_arguments and kwargs is None:
            if role == "anonymous":
                dummy = {key: 1 for key in re.findall(r"<(?:\w+:)?(\w+)>", route)}
                url = reverse(f"console:{name}", kwargs=dummy)
                response = client.get(url)
                if response.status_code != 302 or "/login/" not in response.get("Location", ""):
                    problems.append(f"{url}: anonymous got {response.status_code}, expected a redirect to /login/")
                continue
            problems.append(f"console:{name} takes a record: name one in console_world so the matrix covers it")
            continue
        url = reverse(f"console:{name}", kwargs=kwargs or {})
        action = CONSOLE_ACTIONS.get(name)
        response = client.post(url, action[1]) if action else client.get(url)
        status = response.status_code
        label = f"{'POST' if action else 'GET'} {url}"
        body = response.content.decode(errors="replace") if not getattr(response, "streaming", False) else ""
        if status >= 500:
            problems.append(f"{label}: server error {status}")
            continue
        if role == "anonymous":
            if status != 302 or "/login/" not in response.get("Location", ""):
                problems.append(f"{label}: anonymous got {status}, expected a redirect to /login/")
            continue
        if action:
            may = role in action[0]
            if may and status == 403:
                problems.append(f"{label}: {role} may take this action but was refused")
            if not may and status != 403:
                problems.append(f"{label}: {role} may not take this action but got {status}")
        else:
            expected = 403 if name in CONSOLE_READ_REFUSED.get(role, set()) else 200
            if status != expected:
                problems.append(f"{label}: {role} expected {expected}, got {status}")
        if masked and leaks(body):
            problems.append(f"{label}: a sensitive amount is visible to {role}: {leaks(body)}")
        seen_sentinel = seen_sentinel or bool(leaks(body))
    assert not problems, "\n".join(problems)
    if user is not None and not masked:
        assert seen_sentinel, "roles with the rates permission should see the rates (the sentinel check works)"

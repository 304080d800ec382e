"""The product's roles as data: which permissions each group holds.

Groups are created by a migration and their permissions are re-synced after every `migrate`, so a
model added later gets the right grants without a new data migration. Grants are patterns
"actions:app_label.model" where model may use shell wildcards; history tables only ever get "view".
"""

from fnmatch import fnmatch

from django.apps import apps as global_apps

from .masking import SENSITIVE_PERMISSION

# Apps whose rows nobody outside the superuser should read through a role (tokens, sessions).
NEVER_GRANTED_APPS = {"authtoken", "sessions"}

ROLES: dict[str, dict] = {
    "finance_ops": {
        "description": "Watches billing readiness, exceptions and reconciliation; fixes and re-runs postings.",
        "grants": [
            "view:canonical.*",
            "view:mapping.*",
            "view:systems.*",
            "view:inbound.*",
            "view:sync.*",
            "view:reconciliation.*",
            "add:reconciliation.reconciliationrun",
            "change:reconciliation.discrepancy",
            "add,change:reconciliation.periodsignoff",
            "add,change:canonical.invoice",
            "add,change:canonical.invoiceline",
            "add,change:canonical.payment",
            "add,change:canonical.billingevent",
            "add,change:canonical.revenueschedule",
            "add,change:canonical.revenuescheduleline",
            "change:sync.transaction",
            "change:sync.step",
            "view:metrics.*",
            "add,change:metrics.alertrule",
        ],
        "sensitive": True,
    },
    "delivery_ops": {
        "description": "Watches opportunity-to-project activation, time and milestones, and re-baselines.",
        "grants": [
            "view:canonical.*",
            "view:mapping.*",
            "view:systems.*",
            "view:inbound.*",
            "view:sync.*",
            "view:reconciliation.reconciliationrun",
            "view:reconciliation.discrepancy",
            "add,change:canonical.project",
            "add,change:canonical.task",
            "add,change:canonical.milestone",
            "add,change:canonical.timeentry",
            "add,change:canonical.expense",
            "add,change:canonical.resource",
            "change:sync.transaction",
            "change:sync.step",
            "view:metrics.metricvalue",
            "view:metrics.metricsnapshot",
        ],
        "sensitive": False,
    },
    "mapping_steward": {
        "description": "Edits cross-references, value maps, source profiles, rate cards, ownership and legal entities.",
        "grants": [
            "view:*.*",
            "add,change,delete:mapping.*",
            "add,change,delete:canonical.ratecard",
            "add,change,delete:canonical.ratecardversion",
            "add,change,delete:canonical.ratecardline",
            "add,change,delete:systems.ownershiprule",
            "add,change:canonical.legalentity",
        ],
        "sensitive": True,
    },
    "auditor": {
        "description": "Reads everything, including history, and changes nothing.",
        "grants": ["view:*.*"],
        "sensitive": True,
    },
    "integration_admin": {
        "description": "Runs connected systems, credentials by reference, webhook secrets, schedules and queues.",
        "grants": [
            "view:*.*",
            "add,change,delete:systems.connectedsystem",
            "add,change,delete:systems.signingsecret",
            "add,change,delete:systems.route",
            "add,change,delete:django_q.*",
            "change:sandbox.sandboxsystem",
            "change:sync.*",
            "add:sync.*",
            "add:reconciliation.reconciliationrun",
        ],
        "sensitive": False,
    },
}


def _is_history_model(model) -> bool:
    return hasattr(model, "instance_type") and model._meta.model_name.startswith("historical")


def permissions_for(role: str, apps=global_apps, permission_model=None):
    """The Permission rows a role should hold, given the models installed now."""
    Permission = permission_model or apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    grants = [grant.split(":", 1) for grant in ROLES[role]["grants"]]
    wanted: list[tuple[str, str, str]] = []
    for model in global_apps.get_models():
        opts = model._meta
        if opts.app_label in NEVER_GRANTED_APPS:
            continue
        history = _is_history_model(model)
        for actions, pattern in grants:
            app_pattern, model_pattern = pattern.split(".", 1)
            if not (fnmatch(opts.app_label, app_pattern) and fnmatch(opts.model_name, model_pattern)):
                continue
            for action in actions.split(","):
                if history and action != "view":
                    continue  # the audit trail is never editable through a role
                wanted.append((opts.app_label, opts.model_name, f"{action}_{opts.model_name}"))
    if ROLES[role]["sensitive"]:
        app_label, codename = SENSITIVE_PERMISSION.split(".")
        wanted.append((app_label, "productpermissions", codename))
    content_types = {(ct.app_label, ct.model): ct.pk for ct in ContentType.objects.all()}
    by_key = {
        (perm.content_type_id, perm.codename): perm
        for perm in Permission.objects.filter(content_type_id__in=content_types.values())
    }
    result = []
    for app_label, model_name, codename in wanted:
        perm = by_key.get((content_types.get((app_label, model_name)), codename))
        if perm is not None:
            result.append(perm)
    return result


def sync_roles(apps=global_apps):
    """Create the role groups and give each exactly the permissions its definition grants."""
    Group = apps.get_model("auth", "Group")
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(permissions_for(role, apps))


def sync_roles_after_migrate(sender, app_config=None, using="default", apps=global_apps, **kwargs):
    """Run once per migrate, after the last app's permissions exist."""
    with_models = [config for config in global_apps.get_app_configs() if config.models_module is not None]
    if not with_models or sender.label != with_models[-1].label:
        return
    sync_roles(global_apps)

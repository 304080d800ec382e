"""The audit browser's reads: every history row of every model, filtered, newest first, with diffs.

One page is two statements whatever models it holds: one UNION ALL over the history tables the reader may see
(each part the same small shape: model, history id, date) picks the page, then one more UNION ALL reads the
page's rows with their authors, the rows before them (for the diffs) and their many-to-many membership
(`apps/core/history_rows.py`). No COUNT over the union: a page knows only whether another follows.
"""

import datetime
import functools
from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import CharField, Value
from django.utils import timezone
from django.utils.text import capfirst

from apps.core.history_diff import HISTORY_TYPES, FieldChange, field_changes, visible_value
from apps.core.history_rows import load_history_rows
from apps.core.masking import masked_fields_for

PAGE_SIZE = 50
NAME_FIELDS = ("number", "code", "name", "external_id", "correlation_id", "slug", "source_value", "role")


@dataclass(frozen=True)
class AuditFilter:
    """What the auditor asked for; empty values filter nothing."""

    model: str = ""  # "app_label.modelname"
    object_id: int | None = None
    user: str = ""  # username
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    correlation_id: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.model or self.object_id or self.user or self.date_from or self.date_to or self.correlation_id)


@dataclass
class AuditEntry:
    """One history row as the audit browser shows it."""

    label: str
    model: type
    row: object
    changes: list[FieldChange] = field(default_factory=list)
    masked: frozenset = frozenset()
    username: str = ""  # the author's, read with the row

    @property
    def verbose_name(self) -> str:
        return capfirst(str(self.model._meta.verbose_name))

    @property
    def object_id(self):
        return getattr(self.row, self.model._meta.pk.attname)

    @property
    def object_label(self) -> str:
        for name in NAME_FIELDS:
            value = getattr(self.row, name, None)
            if value and name not in self.masked:
                return f"{self.verbose_name} {value}"
        return f"{self.verbose_name} #{self.object_id}"

    @property
    def action(self) -> str:
        return HISTORY_TYPES[self.row.history_type]

    @property
    def user(self) -> str:
        return self.username


@dataclass
class AuditPage:
    entries: list[AuditEntry]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


@functools.cache
def history_model_of(model) -> type:
    """The history model of `model`, remembered: `model.history` builds a new manager class on every access
    (simple-history's descriptor), about 1 ms each, and a page asks for ~100 of them."""
    return model.history.model


def history_models(user) -> dict[str, type]:
    """{"app_label.modelname": model} of every model with history whose history this user may read."""
    found = {}
    for model in apps.get_models():
        if getattr(model._meta, "simple_history_manager_attribute", None) is None:
            continue
        history_opts = history_model_of(model)._meta
        if user.has_perm(f"{history_opts.app_label}.view_{history_opts.model_name}"):
            found[model._meta.label_lower] = model
    return dict(sorted(found.items(), key=lambda item: str(item[1]._meta.verbose_name)))


def _filtered(model, wanted: AuditFilter):
    rows = history_model_of(model).objects.all()
    if wanted.object_id is not None:
        rows = rows.filter(**{model._meta.pk.attname: wanted.object_id})
    if wanted.user:
        rows = rows.filter(history_user__username=wanted.user)
    if wanted.correlation_id:
        rows = rows.filter(history_correlation_id=wanted.correlation_id)
    tz = timezone.get_current_timezone()
    if wanted.date_from:
        rows = rows.filter(history_date__gte=datetime.datetime.combine(wanted.date_from, datetime.time.min, tz))
    if wanted.date_to:
        end = datetime.datetime.combine(wanted.date_to + datetime.timedelta(days=1), datetime.time.min, tz)
        rows = rows.filter(history_date__lt=end)
    return rows


def audit_page(user, wanted: AuditFilter, *, page: int = 1, size: int = PAGE_SIZE) -> AuditPage:
    """One page of history rows (newest first) across every model the user may read, with diffs."""
    readable = history_models(user)
    if wanted.model:
        readable = {wanted.model: readable[wanted.model]} if wanted.model in readable else {}
    page = max(page, 1)
    if not readable:
        return AuditPage([], page, False)
    parts = [
        _filtered(model, wanted)
        .annotate(audit_model=Value(label, output_field=CharField()))
        .values("audit_model", "history_id", "history_date")
        .order_by()
        for label, model in readable.items()
    ]
    union = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    start = (page - 1) * size
    keys = list(union.order_by("-history_date", "-history_id")[start : start + size + 1])
    has_next = len(keys) > size
    keys = keys[:size]
    return AuditPage(_entries(user, readable, keys), page, has_next)


def audit_rows(user, wanted: AuditFilter, *, chunk: int = 500, limit: int = 100_000):
    """Every matching entry, newest first, in chunks (for the CSV export)."""
    page, seen = 1, 0
    while seen < limit:
        result = audit_page(user, wanted, page=page, size=chunk)
        yield from result.entries
        seen += len(result.entries)
        if not result.has_next:
            return
        page += 1


def audit_entry(user, label: str, history_id: int) -> AuditEntry | None:
    """One history row with its diff, or None if it does not exist or the user may not read it."""
    model = history_models(user).get(label)
    if model is None:
        return None
    entries = _entries(user, {label: model}, [{"audit_model": label, "history_id": history_id}])
    return entries[0] if entries else None


def _entries(user, readable: dict[str, type], keys: list[dict]) -> list[AuditEntry]:
    by_model: dict[type, list[int]] = {}
    labels: dict[type, str] = {}
    for key in keys:
        history_model = history_model_of(readable[key["audit_model"]])
        labels[history_model] = key["audit_model"]
        by_model.setdefault(history_model, []).append(key["history_id"])
    loaded: dict[tuple[str, int], AuditEntry] = {}
    for history_model, found in load_history_rows(by_model).items():
        label = labels[history_model]
        model = readable[label]
        hidden = masked_fields_for(user, model)
        for row in found.rows:
            changes = field_changes(row, found.previous.get(row.history_id), hidden, user=user)
            username = found.usernames.get(row.history_id, "")
            loaded[(label, row.history_id)] = AuditEntry(label, model, row, changes, hidden, username)
    return [loaded[key] for key in ((k["audit_model"], k["history_id"]) for k in keys) if key in loaded]


def audit_users():
    """People who appear as authors, for the filter (active and inactive: history outlives accounts)."""
    return get_user_model().objects.order_by("username").values_list("username", flat=True)


def snapshot(entry: AuditEntry, user) -> list[tuple[str, object, bool]]:
    """(field, value, masked) of the record as this history row saved it, as `user` may see it."""
    values = []
    for model_field in entry.row.tracked_fields:
        masked = model_field.name in entry.masked
        value = None if masked else visible_value(getattr(entry.row, model_field.attname), user)
        values.append((model_field.name, value, masked))
    return values

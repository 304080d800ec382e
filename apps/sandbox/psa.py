"""The PSA sandbox, shaped after Kantata OX (Mavenlink): workspaces, time entries and stories in envelopes."""

from . import records
from .common import Answer, Context, VendorError, endpoint, not_found
from .models import SandboxRecord

KIND = "psa"
TEXT, INTEGER, DATE, CURRENCY, BOOLEAN, ID = "text", "integer", "date", "currency", "boolean", "id"

COLLECTIONS = {
    "workspaces": {
        "singular": "workspace",
        "start": 4100001,
        "required": ["title"],
        "filters": ["external_reference"],
        "fields": {
            "title": TEXT,
            "external_reference": TEXT,
            "start_date": DATE,
            "due_date": DATE,
            "price_in_cents": INTEGER,
            "currency": CURRENCY,
            "account_name": TEXT,
            "billing_method": TEXT,
            "rate_card": TEXT,
            "baseline_version": INTEGER,
            "description": TEXT,
            "status": TEXT,
        },
    },
    "time_entries": {
        "singular": "time_entry",
        "start": 7300001,
        "required": ["workspace_id", "date_performed", "time_in_minutes"],
        "filters": ["workspace_id", "story_id"],
        "fields": {
            "workspace_id": ID,
            "story_id": ID,
            "date_performed": DATE,
            "time_in_minutes": INTEGER,
            "user_id": ID,
            "notes": TEXT,
            "billable": BOOLEAN,
            "approved": BOOLEAN,
            "rate_in_cents": INTEGER,
            "role": TEXT,
        },
    },
    "stories": {
        "singular": "story",
        "start": 5200001,
        "required": ["workspace_id", "title"],
        "filters": ["workspace_id"],
        "fields": {
            "workspace_id": ID,
            "title": TEXT,
            "story_type": TEXT,
            "state": TEXT,
            "start_date": DATE,
            "due_date": DATE,
            "price_in_cents": INTEGER,
        },
    },
}
REFERENCES = {"workspace_id": "workspaces", "story_id": "stories"}
DEFAULTS = {
    "time_entries": {"billable": True, "approved": False},
    "stories": {"story_type": "task", "state": "not started"},
}
MAX_PER_PAGE = 200


def _invalid(message: str, field: str, status: int = 400) -> VendorError:
    return VendorError(status, "validation", message, param=field)


def render(record: SandboxRecord) -> dict:
    return {
        "id": record.internal_id,
        **record.data,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }


def envelope(collection: str, page_records: list, *, total: int | None = None, page: int = 1, per_page: int = 0):
    """Kantata's answer: count, results [{key, id}], and the records keyed by id under the collection's name."""
    total = len(page_records) if total is None else total
    per_page = per_page or max(1, len(page_records))
    return {
        "count": total,
        "results": [{"key": collection, "id": record.internal_id} for record in page_records],
        collection: {record.internal_id: render(record) for record in page_records},
        "meta": {
            "count": total,
            "page_count": max(1, -(-total // per_page)),
            "page_number": page,
            "page_size": per_page,
        },
    }


def _clean_value(name: str, kind: str, value):
    if value is None or value == "":
        return None
    if kind == TEXT and not isinstance(value, str):
        raise _invalid(f"{name} must be text", name)
    if kind == INTEGER:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and value.lstrip("-").isdigit())
        ):
            raise _invalid(f"{name} must be a whole number", name)
        value = int(value)
        if value < 0:
            raise _invalid(f"{name} must not be negative", name)
    if kind == DATE and records.iso_date_or_none(value) is None:
        raise _invalid(f"{name} must be a date (YYYY-MM-DD), not {value!r}", name)
    if kind == CURRENCY and not (isinstance(value, str) and len(value) == 3 and value.isalpha()):
        raise _invalid(f"{name} must be a three-letter currency code, not {value!r}", name)
    if kind == CURRENCY:
        value = value.upper()
    if kind == BOOLEAN and not isinstance(value, bool):
        raise _invalid(f"{name} must be true or false", name)
    if kind == ID:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _invalid(f"{name} must be an id", name)
        value = str(value)
        target = REFERENCES.get(name)
        if target and records.find(KIND, target, value) is None:
            raise _invalid(f"{name} {value} does not match an existing {COLLECTIONS[target]['singular']}", name)
    return value


def _validated(collection: str, data: dict) -> dict:
    """The record's data with known attributes checked and normalised (others are kept as sent)."""
    spec = COLLECTIONS[collection]
    cleaned = {}
    for name, value in data.items():
        kind = spec["fields"].get(name)
        cleaned[name] = _clean_value(name, kind, value) if kind else value
    for name in spec["required"]:
        if cleaned.get(name) in (None, ""):
            raise _invalid(f"{name} can't be blank", name)
    start, due = records.iso_date_or_none(cleaned.get("start_date")), records.iso_date_or_none(cleaned.get("due_date"))
    if start and due and due < start:
        raise _invalid(f"due_date {due} is before start_date {start}", "due_date")
    if collection == "time_entries" and cleaned.get("time_in_minutes") == 0:
        raise _invalid("time_in_minutes must be greater than 0", "time_in_minutes")
    if collection == "time_entries" and cleaned.get("story_id"):
        story = records.find(KIND, "stories", cleaned["story_id"])
        if story.data.get("workspace_id") != cleaned["workspace_id"]:
            raise _invalid(f"story_id {cleaned['story_id']} belongs to another workspace", "story_id")
    return cleaned


def _attributes(ctx: Context, collection: str) -> dict:
    singular = COLLECTIONS[collection]["singular"]
    attributes = ctx.json().get(singular)
    if not isinstance(attributes, dict):
        raise _invalid(f'Send the {singular} as {{"{singular}": {{...}}}}', singular)
    attributes.pop("id", None)
    return attributes


def _external_reference_free(value: str | None, *, record_id: str | None = None) -> None:
    if not value:
        return
    existing = records.find_external(KIND, "workspaces", value)
    if existing is not None and existing.internal_id != record_id:
        raise _invalid("external_reference has already been taken", "external_reference", status=422)


def _load(collection: str, record_id: str) -> SandboxRecord:
    record = records.find(KIND, collection, record_id)
    if record is None:
        raise VendorError(404, "not_found", f"{COLLECTIONS[collection]['singular']} {record_id} was not found")
    return record


def create(ctx: Context, collection: str) -> Answer:
    """POST <collection>.json {"<singular>": {...}} → 200 envelope with the new record."""
    data = _validated(collection, {**DEFAULTS.get(collection, {}), **_attributes(ctx, collection)})
    external = data.get("external_reference") if collection == "workspaces" else None
    _external_reference_free(external)
    record_id = records.next_number(KIND, collection, start=COLLECTIONS[collection]["start"])
    record = records.create(KIND, collection, data, internal_id=record_id, external_id=external)
    return Answer(200, envelope(collection, [record]))


def update(ctx: Context, collection: str, record_id: str) -> Answer:
    """PUT <collection>/<id>.json: change the attributes sent (a workspace re-baseline) → 200 envelope."""
    record = _load(collection, record_id)
    data = _validated(collection, {**record.data, **_attributes(ctx, collection)})
    external = data.get("external_reference") if collection == "workspaces" else None
    _external_reference_free(external, record_id=record.internal_id)
    records.update(record, data, external_id=external or "")
    return Answer(200, envelope(collection, [record]))


def read(ctx: Context, collection: str, record_id: str) -> Answer:
    """GET <collection>/<id>.json → envelope with one record."""
    return Answer(200, envelope(collection, [_load(collection, record_id)]))


def _positive(ctx: Context, name: str, default: int, maximum: int | None = None) -> int:
    raw = ctx.request.GET.get(name, str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise _invalid(f"{name} must be a whole number of at least 1", name)
    return min(int(raw), maximum) if maximum else int(raw)


def listing(ctx: Context, collection: str) -> Answer:
    """GET <collection>.json?external_reference=&workspace_id=&page=&per_page= → envelope, oldest first."""
    queryset = SandboxRecord.objects.filter(kind=KIND, object_type=collection)
    for name in COLLECTIONS[collection]["filters"]:
        value = ctx.request.GET.get(name)
        if value is None:
            continue
        if name == "external_reference":
            queryset = queryset.filter(external_id=value) if value else queryset.none()
        else:
            queryset = queryset.filter(**{f"data__{name}": value})
    page = _positive(ctx, "page", 1)
    per_page = _positive(ctx, "per_page", 20, MAX_PER_PAGE)
    page_records, total = records.page(queryset, offset=(page - 1) * per_page, limit=per_page)
    return Answer(200, envelope(collection, page_records, total=total, page=page, per_page=per_page))


collection_view = endpoint(KIND, GET=listing, POST=create)
record_view = endpoint(KIND, GET=read, PUT=update)
anything_else = not_found(KIND)

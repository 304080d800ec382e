"""The HubSpot sandbox, shaped after HubSpot's CRM v3 API: objects, associations, batch read, rate limit headers.

Records are deals, companies and contacts with string properties (HubSpot answers every property value as a
string), numeric IDs, and associations kept on both sides (deal_to_company / company_to_deal). Every answer
carries the X-HubSpot-RateLimit-* headers of a ten-second window; throttle faults answer 429 with Retry-After
and the RATE_LIMITS category, as HubSpot does.
"""

import datetime

from django.db.models import BigIntegerField, Max
from django.db.models.functions import Cast
from django.utils import timezone

from . import records
from .common import ANSWER_HEADERS, Answer, Context, VendorError, endpoint, not_found
from .models import SandboxCall, SandboxRecord

KIND = "hubspot"
BASE_PATH = "/sandbox/hubspot/crm/v3/objects"
FIRST_ID = 10_000_000_001
WINDOW_MS = 10_000
WINDOW_MAX = 100
SECONDLY_MAX = 10
DAILY_MAX = 250_000
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_BATCH = 100

STRING, NUMBER, DATETIME, ENUM = "string", "number", "datetime", "enumeration"
DEAL_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
)
# Property name → type, per object; custom properties are the ones the built-in profile and the connector use.
PROPERTIES = {
    "deals": {
        "dealname": STRING,
        "amount": NUMBER,
        "deal_currency_code": STRING,
        "closedate": DATETIME,
        "dealstage": ENUM,
        "pipeline": STRING,
        "contract_type": STRING,
        "rate_card": STRING,
        "legal_entity": STRING,
        "region": STRING,
        "project_status": STRING,
        "psa_project_id": STRING,
        "erp_project_id": STRING,
        "integration_message": STRING,
    },
    "companies": {
        "name": STRING,
        "domain": STRING,
        "country": STRING,
        "vat_number": STRING,
        "region": STRING,
        "billing_email": STRING,
        "parent_company_id": STRING,
        "credit_status": STRING,
        "ar_balance": NUMBER,
        "erp_customer_id": STRING,
        "last_payment_date": DATETIME,
    },
    "contacts": {"email": STRING, "firstname": STRING, "lastname": STRING, "company": STRING},
}
REQUIRED = {"deals": ["dealname"], "companies": ["name"], "contacts": ["email"]}
UNIQUE = {"contacts": "email", "companies": "domain"}  # HubSpot refuses a second contact (409) with one email
# The HUBSPOT_DEFINED association type IDs of the v3/v4 APIs and their v3 labels.
ASSOCIATION_TYPES = {
    ("deals", "companies"): (5, "deal_to_company"),
    ("companies", "deals"): (6, "company_to_deal"),
    ("contacts", "companies"): (1, "contact_to_company"),
    ("companies", "contacts"): (2, "company_to_contact"),
    ("deals", "contacts"): (3, "deal_to_contact"),
    ("contacts", "deals"): (4, "contact_to_deal"),
}
SYSTEM_PROPERTIES = ("hs_object_id", "createdate", "hs_lastmodifieddate")


def _next_id() -> str:
    """The next object ID, unique across object types as HubSpot's are within a portal (callers hold the lock)."""
    highest = SandboxRecord.objects.filter(kind=KIND).aggregate(top=Max(Cast("internal_id", BigIntegerField())))["top"]
    return str(max(FIRST_ID, (highest or 0) + 1))


def _iso(moment) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rate_limit_headers(request) -> dict:
    """HubSpot's rate limit headers: the ten-second window's maximum and what is left of it (and of the day)."""
    now = timezone.now()
    window = SandboxCall.objects.filter(kind=KIND, received_at__gte=now - datetime.timedelta(milliseconds=WINDOW_MS))
    second = SandboxCall.objects.filter(kind=KIND, received_at__gte=now - datetime.timedelta(seconds=1))
    day = SandboxCall.objects.filter(kind=KIND, received_at__date=now.date())
    used, used_second = window.count() + 1, second.count() + 1  # this call is logged after its answer is ready
    return {
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(WINDOW_MS),
        "X-HubSpot-RateLimit-Max": str(WINDOW_MAX),
        "X-HubSpot-RateLimit-Remaining": str(max(0, WINDOW_MAX - used)),
        "X-HubSpot-RateLimit-Secondly": str(SECONDLY_MAX),
        "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, SECONDLY_MAX - used_second)),
        "X-HubSpot-RateLimit-Daily": str(DAILY_MAX),
        "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, DAILY_MAX - day.count() - 1)),
    }


ANSWER_HEADERS[KIND] = rate_limit_headers


# --- properties ------------------------------------------------------------------------------------------


def _property_errors(object_type: str, properties) -> dict:
    """The properties checked against the object's definition, as strings; HubSpot's 400 naming each bad one."""
    if not isinstance(properties, dict):
        raise VendorError(400, "VALIDATION_ERROR", "Invalid input JSON: 'properties' must be an object.")
    spec = PROPERTIES[object_type]
    cleaned, problems = {}, []
    for name, value in properties.items():
        kind = spec.get(name)
        if kind is None:
            problems.append((name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST"))
            continue
        if value is None or value == "":
            cleaned[name] = ""
            continue
        text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        if kind == NUMBER and records.decimal_or_none(text) is None:
            problems.append((name, f"{text} was not a valid number.", "INVALID_DECIMAL"))
            continue
        if kind == DATETIME and _datetime_or_none(text) is None:
            problems.append((name, f"{text} was not a valid date or timestamp.", "INVALID_DATE"))
            continue
        if kind == ENUM and text not in DEAL_STAGES:
            problems.append(
                (name, f"{text} was not one of the allowed options: {', '.join(DEAL_STAGES)}", "INVALID_OPTION")
            )
            continue
        cleaned[name] = text
    if problems:
        details = ", ".join(f'{{"isValid":false,"message":"{m}","error":"{e}","name":"{n}"}}' for n, m, e in problems)
        raise VendorError(400, "VALIDATION_ERROR", f"Property values were not valid: [{details}]", param=problems[0][0])
    return cleaned


def _datetime_or_none(text: str):
    if text.isdigit():
        return text
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _check_unique(object_type: str, properties: dict, *, record_id: str | None = None) -> None:
    name = UNIQUE.get(object_type)
    value = (properties.get(name) or "").lower() if name else ""
    if not value:
        return
    for other in SandboxRecord.objects.filter(kind=KIND, object_type=object_type).exclude(internal_id=record_id or ""):
        if (other.data.get("properties", {}).get(name) or "").lower() == value:
            raise VendorError(
                409,
                "CONFLICT",
                f"{object_type[:-1].title()} already exists. Existing ID: {other.internal_id}",
                param=name,
            )


# --- rendering -------------------------------------------------------------------------------------------


def render(record: SandboxRecord, *, properties: list[str] | None = None, associations: list[str] | None = None):
    """An object as CRM v3 answers it: id, properties (all as strings), timestamps, archived, associations."""
    stored = record.data.get("properties", {})
    values = {
        "hs_object_id": record.internal_id,
        "createdate": _iso(record.created_at),
        "hs_lastmodifieddate": _iso(record.updated_at),
    }
    if properties:
        values.update({name: stored.get(name) or None for name in properties if name not in SYSTEM_PROPERTIES})
    else:
        values.update({name: value for name, value in stored.items() if value != ""})
    body = {
        "id": record.internal_id,
        "properties": values,
        "createdAt": _iso(record.created_at),
        "updatedAt": _iso(record.updated_at),
        "archived": False,
    }
    linked = {}
    for to_type in associations or []:
        results = _association_results(record, to_type)
        if results:
            linked[to_type] = {"results": results}
    if linked:
        body["associations"] = linked
    return body


def _association_results(record: SandboxRecord, to_type: str) -> list[dict]:
    label = ASSOCIATION_TYPES.get((record.object_type, to_type), (0, f"{record.object_type}_to_{to_type}"))[1]
    ids = record.data.get("associations", {}).get(to_type, [])
    return [{"id": other_id, "type": label} for other_id in ids]


def _names(value) -> list[str]:
    """?properties=a,b&properties=c → ["a", "b", "c"]."""
    names = []
    for item in value:
        names.extend(part.strip() for part in item.split(",") if part.strip())
    return names


def _object_type(object_type: str) -> str:
    if object_type not in PROPERTIES:
        raise VendorError(404, "OBJECT_NOT_FOUND", f"Unable to infer object type from: {object_type}")
    return object_type


def _load(object_type: str, record_id: str) -> SandboxRecord:
    record = records.find(KIND, _object_type(object_type), record_id)
    if record is None:
        raise VendorError(404, "OBJECT_NOT_FOUND", f"Object not found.  objectId are usually numeric. ({record_id})")
    return record


def _associate(record: SandboxRecord, to_type: str, to_id: str) -> None:
    other = records.find(KIND, to_type, to_id)
    if other is None:
        raise VendorError(400, "VALIDATION_ERROR", f"No {to_type} with ID {to_id} exists to associate with.")
    for one, two, kind in ((record, other, to_type), (other, record, record.object_type)):
        data = dict(one.data)
        linked = {**data.get("associations", {})}
        ids = list(linked.get(kind, []))
        if two.internal_id not in ids:
            ids.append(two.internal_id)
        linked[kind] = ids
        data["associations"] = linked
        records.update(one, data)


# --- handlers --------------------------------------------------------------------------------------------


def object_list(ctx: Context, object_type: str) -> Answer:
    """GET objects/<type>?limit=&after=&properties=&associations=: one page, with paging.next.after."""
    _object_type(object_type)
    query = ctx.request.GET
    try:
        limit = min(MAX_LIMIT, max(1, int(query.get("limit", DEFAULT_LIMIT))))
        after = int(query.get("after") or 0)
    except ValueError as exc:
        raise VendorError(400, "VALIDATION_ERROR", f"limit and after must be numbers: {exc}") from exc
    queryset = SandboxRecord.objects.filter(kind=KIND, object_type=object_type).order_by("id")
    page, total = records.page(queryset, offset=after, limit=limit)
    properties, associations = _names(query.getlist("properties")), _names(query.getlist("associations"))
    body = {"results": [render(record, properties=properties, associations=associations) for record in page]}
    if after + len(page) < total:
        next_after = str(after + len(page))
        body["paging"] = {
            "next": {
                "after": next_after,
                "link": ctx.url(f"{BASE_PATH}/{object_type}?limit={limit}&after={next_after}"),
            }
        }
    return Answer(200, body)


def object_create(ctx: Context, object_type: str) -> Answer:
    """POST objects/<type> {"properties", "associations": [{"to": {"id"}, "types": [...]}]} → 201 the object."""
    _object_type(object_type)
    body = ctx.json()
    properties = _property_errors(object_type, body.get("properties") or {})
    missing = [name for name in REQUIRED[object_type] if not properties.get(name)]
    if missing:
        raise VendorError(400, "VALIDATION_ERROR", f"Missing required property: {missing[0]}", param=missing[0])
    _check_unique(object_type, properties)
    record_id = _next_id()
    record = records.create(KIND, object_type, {"properties": properties, "associations": {}}, internal_id=record_id)
    links = body.get("associations") or []
    if not isinstance(links, list):
        raise VendorError(400, "VALIDATION_ERROR", "Invalid input JSON: 'associations' must be a list.")
    for link in links:
        to_id = str((link.get("to") or {}).get("id", "")) if isinstance(link, dict) else ""
        type_ids = {entry.get("associationTypeId") for entry in link.get("types", []) if isinstance(entry, dict)}
        to_type = next(
            (to for (one, to), (type_id, _) in ASSOCIATION_TYPES.items() if one == object_type and type_id in type_ids),
            None,
        )
        if not to_id or to_type is None:
            raise VendorError(
                400, "VALIDATION_ERROR", f"Invalid association {link!r}: give to.id and a known associationTypeId."
            )
        _associate(record, to_type, to_id)
    record.refresh_from_db()
    return Answer(201, render(record))


def object_read(ctx: Context, object_type: str, record_id: str) -> Answer:
    """GET objects/<type>/<id>?properties=&associations=."""
    record = _load(object_type, record_id)
    query = ctx.request.GET
    return Answer(
        200,
        render(
            record, properties=_names(query.getlist("properties")), associations=_names(query.getlist("associations"))
        ),
    )


def object_update(ctx: Context, object_type: str, record_id: str) -> Answer:
    """PATCH objects/<type>/<id> {"properties"}: change the properties sent; 200 the object."""
    record = _load(object_type, record_id)
    properties = _property_errors(object_type, ctx.json().get("properties") or {})
    _check_unique(object_type, properties, record_id=record_id)
    merged = {**record.data.get("properties", {}), **properties}
    records.update(record, {**record.data, "properties": merged})
    return Answer(200, render(record))


def batch_read(ctx: Context, object_type: str) -> Answer:
    """POST objects/<type>/batch/read {"inputs": [{"id"}], "properties"}: 200, or 207 naming the IDs not found."""
    _object_type(object_type)
    body = ctx.json()
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise VendorError(400, "VALIDATION_ERROR", "Invalid input JSON: 'inputs' must list at least one {\"id\"}.")
    if len(inputs) > MAX_BATCH:
        raise VendorError(400, "VALIDATION_ERROR", f"Batch size {len(inputs)} is over the limit of {MAX_BATCH}.")
    properties = body.get("properties") or []
    started = _iso(timezone.now())
    results, missing = [], []
    for item in inputs:
        record_id = str(item.get("id", "")) if isinstance(item, dict) else ""
        record = records.find(KIND, object_type, record_id)
        if record is None:
            missing.append(record_id)
        else:
            results.append(render(record, properties=properties))
    answer = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _iso(timezone.now())}
    if missing:
        answer["numErrors"] = 1
        answer["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {object_type} objects, they may be deleted or not exist.",
                "context": {"ids": missing},
            }
        ]
        return Answer(207, answer)
    return Answer(200, answer)


def association_list(ctx: Context, object_type: str, record_id: str, to_type: str) -> Answer:
    """GET objects/<type>/<id>/associations/<toType> → {"results": [{"id", "type"}]}."""
    record = _load(object_type, record_id)
    _object_type(to_type)
    return Answer(200, {"results": _association_results(record, to_type)})


def association_create(
    ctx: Context, object_type: str, record_id: str, to_type: str, to_id: str, association_type: str
) -> Answer:
    """PUT objects/<type>/<id>/associations/<toType>/<toId>/<type label>: link both ways; 200 the object."""
    record = _load(object_type, record_id)
    _object_type(to_type)
    expected = ASSOCIATION_TYPES.get((object_type, to_type), (0, ""))[1]
    if association_type not in (expected, str(ASSOCIATION_TYPES.get((object_type, to_type), (0, ""))[0])):
        raise VendorError(400, "VALIDATION_ERROR", f"{association_type} is not a valid association type here.")
    _associate(record, to_type, to_id)
    record.refresh_from_db()
    return Answer(200, render(record, associations=[to_type]))


collection_view = endpoint(KIND, GET=object_list, POST=object_create)
record_view = endpoint(KIND, GET=object_read, PATCH=object_update)
batch_read_view = endpoint(KIND, POST=batch_read)
associations_view = endpoint(KIND, GET=association_list)
association_view = endpoint(KIND, PUT=association_create)
anything_else = not_found(KIND)

"""The Business Central sandbox, shaped after the Dynamics 365 Business Central API v2.0 (OData v4).

One company (`companies(<id>)`) holding customers, projects, sales invoices with their lines, customer
payments, and the reference data (currencies, tax groups, items). Every record answers an `@odata.etag`;
PATCH and DELETE need `If-Match` with it (or `*`) and a stale one answers 412 `Request_EntityChanged`.
Lists are paged by the server: `@odata.nextLink` carries a `$skiptoken` (page size 20, or the caller's
`Prefer: odata.maxpagesize=N`); `$filter=<field> eq '<value>'` (several joined by `and` or `or`) and `$top`
are understood. Webhook
subscriptions are created only after the notification URL echoes the `validationToken` (the handshake),
and every notification carries the subscription's `clientState`.

Over 500 lines on purpose: one vendor's simulator (customers, invoices, payments, paging, ETags,
subscriptions) in one file, like its siblings.
"""

import base64
import datetime
import hashlib
import json
import re
import uuid
from decimal import Decimal
from urllib.parse import quote

import requests
from django.utils import timezone

from . import records
from .common import Answer, Context, VendorError, endpoint, not_found
from .models import SandboxRecord
from .seeds import BC_COMPANY_ID
from .webhooks import webhook_emit

KIND = "business-central"
API_ROOT = "/sandbox/business-central/api/v2.0"
PAGE_SIZE = 20
HANDSHAKE_TIMEOUT = (3, 5)
SUBSCRIPTION_DAYS = 3
PAYMENT_TERMS_DAYS = 30
FILTER_CLAUSE = re.compile(r"\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*")
FILTER_JOIN = re.compile(r"(and|or)\b", re.IGNORECASE)
SEGMENT = re.compile(r"^(\w+)(?:\(([^)]*)\))?$")
TWO = Decimal("0.01")

# entity set → (record type, writable fields with their kind, required on create)
ENTITIES = {
    "customers": (
        "customer",
        {
            "number": "text",
            "displayName": "text",
            "type": "text",
            "email": "text",
            "phoneNumber": "text",
            "currencyCode": "text",
            "taxRegistrationNumber": "text",
            "taxAreaId": "text",
            "addressLine1": "text",
            "city": "text",
            "country": "text",
            "blocked": "text",
        },
        ["displayName"],
    ),
    "projects": ("project", {"number": "text", "displayName": "text"}, ["number"]),
    "salesInvoices": (
        "salesInvoice",
        {
            "externalDocumentNumber": "text",
            "invoiceDate": "date",
            "postingDate": "date",
            "dueDate": "date",
            "customerId": "customer",
            "customerNumber": "text",
            "currencyCode": "text",
        },
        ["customerId"],
    ),
    "customerPayments": (
        "customerPayment",
        {
            "customerId": "customer",
            "postingDate": "date",
            "documentNumber": "text",
            "externalDocumentNumber": "text",
            "amount": "number",
            "appliesToInvoiceId": "invoice",
            "description": "text",
        },
        ["customerId", "amount"],
    ),
    "currencies": ("currency", {}, []),
    "taxGroups": ("taxGroup", {}, []),
    "items": ("item", {}, []),
    "dimensionValues": ("dimensionValue", {}, []),
}
READ_ONLY = {"currencies", "taxGroups", "items", "dimensionValues"}
LINE_FIELDS = {
    "sequence": "number",
    "lineType": "text",
    "lineObjectNumber": "text",
    "description": "text",
    "quantity": "number",
    "unitPrice": "number",
    "taxCode": "text",
}


def _error(status: int, code: str, message: str) -> VendorError:
    return VendorError(status, code, message)


def _now_iso() -> str:
    return timezone.now().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def etag(record: SandboxRecord) -> str:
    """A weak ETag that changes with every save of the record."""
    digest = hashlib.sha256(
        f"{record.internal_id}:{record.updated_at.isoformat()}:{json.dumps(record.data, sort_keys=True)}".encode()
    )
    token = base64.b64encode(f"{digest.hexdigest()[:16]};".encode()).decode()
    return f'W/"{token}"'


def render(record: SandboxRecord) -> dict:
    return {"@odata.etag": etag(record), "id": record.internal_id, **record.data}


def _check_if_match(ctx: Context, record: SandboxRecord) -> None:
    given = ctx.request.headers.get("If-Match", "").strip()
    if not given:
        raise _error(
            400,
            "Request_InvalidToken",
            "Could not validate the client concurrency token required by the service. Please provide a valid token "
            "in the client request (If-Match).",
        )
    if given != "*" and given != etag(record):
        raise _error(412, "Request_EntityChanged", "Another user has already changed the record.")


def _clean(fields_spec: dict, body: dict, *, entity: str) -> dict:
    cleaned = {}
    for name, value in body.items():
        if name.startswith("@odata") or name == "id":
            continue
        kind = fields_spec.get(name)
        if kind is None:
            raise _error(
                400,
                "BadRequest_PropertyNotFound",
                f"The property '{name}' does not exist on type 'Microsoft.NAV.{entity[:-1]}'. Make sure to only "
                "use property names that are defined by the type.",
            )
        if value is None:
            cleaned[name] = ""
            continue
        if kind == "number":
            number = records.decimal_or_none(value)
            if number is None:
                raise _error(
                    400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type 'Edm.Decimal'."
                )
            cleaned[name] = records.json_number(number)
        elif kind == "date":
            if records.iso_date_or_none(value) is None:
                raise _error(
                    400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type 'Edm.Date'."
                )
            cleaned[name] = value
        elif kind == "customer":
            if records.find(KIND, "customer", str(value)) is None:
                raise _error(
                    400,
                    "Internal_RecordNotFound",
                    f"The Customer does not exist. Identification fields and values: Id='{value}'",
                )
            cleaned[name] = str(value)
        elif kind == "invoice":
            if records.find(KIND, "salesInvoice", str(value)) is None:
                raise _error(
                    400,
                    "Internal_RecordNotFound",
                    f"The Sales Invoice does not exist. Identification fields and values: Id='{value}'",
                )
            cleaned[name] = str(value)
        else:
            if not isinstance(value, str):
                raise _error(
                    400, "BadRequest", f"Cannot convert a value to the expected type 'Edm.String' for '{name}'."
                )
            cleaned[name] = value
    return cleaned


def _company(company_id: str) -> None:
    if company_id.lower() != BC_COMPANY_ID:
        raise _error(404, "BadRequest_NotFound", f"The company '{company_id}' does not exist.")


def _load(record_type: str, record_id: str, entity: str) -> SandboxRecord:
    record = records.find(KIND, record_type, record_id.strip("'").lower())
    if record is None:
        raise _error(404, "BadRequest_NotFound", f"The {entity} with id '{record_id}' was not found.")
    return record


def _page_size(ctx: Context) -> int:
    prefer = ctx.request.headers.get("Prefer", "")
    match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
    return max(1, min(1000, int(match.group(1)))) if match else PAGE_SIZE


def _filter_clauses(wanted: str) -> tuple[list[tuple[str, str]], str]:
    """`<field> eq '<value>'` clauses joined by `and` or `or` (not both); a 400 for anything else."""
    clauses, joins, position = [], set(), 0
    while True:
        match = FILTER_CLAUSE.match(wanted, position)
        if not match:
            raise _error(
                400,
                "BadRequest",
                f"The $filter '{wanted}' is not supported here: use <field> eq '<value>', joined by 'and' or 'or'.",
            )
        clauses.append((match.group(1), match.group(2).replace("''", "'")))
        position = match.end()
        if position >= len(wanted):
            break
        join = FILTER_JOIN.match(wanted, position)
        if not join:
            raise _error(400, "BadRequest", f"The $filter '{wanted}' is not supported here: expected 'and' or 'or'.")
        joins.add(join.group(1).lower())
        position = join.end()
    if len(joins) > 1:
        raise _error(400, "BadRequest", f"The $filter '{wanted}' mixes 'and' and 'or' without parentheses.")
    return clauses, (joins.pop() if joins else "and")


def _listing(ctx: Context, path: str, rows: list[dict]) -> Answer:
    """An OData collection: {"@odata.context", "value"} and an @odata.nextLink while more remain."""
    query = ctx.request.GET
    wanted = query.get("$filter")
    if wanted:
        clauses, join = _filter_clauses(wanted)
        combine = all if join == "and" else any
        rows = [row for row in rows if combine(str(row.get(field, "")) == value for field, value in clauses)]
    if query.get("$top"):
        if not query["$top"].isdigit():
            raise _error(400, "BadRequest", f"Invalid value '{query['$top']}' for $top.")
        rows = rows[: int(query["$top"])]
    token = query.get("$skiptoken") or ""
    offset = int(token) if token.isdigit() else 0
    size = _page_size(ctx)
    body = {
        "@odata.context": ctx.url(f"{API_ROOT}/$metadata#{path.rsplit('/', 1)[-1]}"),
        "value": rows[offset : offset + size],
    }
    if offset + size < len(rows):
        params = [f"{name}={quote(value)}" for name, value in query.items() if name != "$skiptoken"]
        params.append(f"$skiptoken={offset + size}")
        body["@odata.nextLink"] = ctx.url(f"{API_ROOT}/{path}?{'&'.join(params)}")
    headers = (
        {"Preference-Applied": f"odata.maxpagesize={size}"}
        if "maxpagesize" in ctx.request.headers.get("Prefer", "")
        else {}
    )
    return Answer(200, body, headers)


# --- sales invoices --------------------------------------------------------------------------------------


def _invoice_totals(record: SandboxRecord) -> dict:
    lines = [
        row
        for row in SandboxRecord.objects.filter(kind=KIND, object_type="salesInvoiceLine").order_by("id")
        if row.data.get("documentId") == record.internal_id
    ]
    net = sum((Decimal(str(line.data.get("amountExcludingTax", 0))) for line in lines), Decimal(0))
    tax = sum((Decimal(str(line.data.get("totalTaxAmount", 0))) for line in lines), Decimal(0))
    paid = Decimal(str(record.data.get("paidAmount", 0)))
    total = net + tax
    return {
        "totalAmountExcludingTax": records.json_number(net),
        "totalTaxAmount": records.json_number(tax),
        "totalAmountIncludingTax": records.json_number(total),
        "remainingAmount": records.json_number(total - paid),
    }


def _add_line(invoice: SandboxRecord, body: dict) -> SandboxRecord:
    if invoice.data.get("status") != "Draft":
        raise _error(
            400,
            "Internal_DocumentNotDraft",
            f"Sales invoice {invoice.data.get('number')} is posted; its lines cannot change.",
        )
    line = _clean(LINE_FIELDS, body, entity="salesInvoiceLines")
    quantity = Decimal(str(line.get("quantity") or 1))
    price = Decimal(str(line.get("unitPrice") or 0))
    tax_code = line.get("taxCode") or ""
    group = next(
        (r for r in SandboxRecord.objects.filter(kind=KIND, object_type="taxGroup") if r.data.get("code") == tax_code),
        None,
    )
    if tax_code and group is None:
        raise _error(
            400,
            "Internal_RecordNotFound",
            f"The Tax Group does not exist. Identification fields and values: Code='{tax_code}'",
        )
    if line.get("lineType", "Item") == "Item" and line.get("lineObjectNumber"):
        if not any(
            r.data.get("number") == line["lineObjectNumber"]
            for r in SandboxRecord.objects.filter(kind=KIND, object_type="item")
        ):
            raise _error(
                400,
                "Internal_RecordNotFound",
                f"The Item does not exist. Identification fields and values: No.='{line['lineObjectNumber']}'",
            )
    rate = Decimal(str(group.data.get("taxPercent", 0))) if group else Decimal(0)
    net = (quantity * price).quantize(TWO)
    existing = [
        r
        for r in SandboxRecord.objects.filter(kind=KIND, object_type="salesInvoiceLine")
        if r.data.get("documentId") == invoice.internal_id
    ]
    data = {
        "documentId": invoice.internal_id,
        "sequence": line.get("sequence") or (len(existing) + 1) * 10000,
        "lineType": line.get("lineType") or "Item",
        "lineObjectNumber": line.get("lineObjectNumber", ""),
        "description": line.get("description", ""),
        "quantity": records.json_number(quantity),
        "unitPrice": records.json_number(price),
        "taxCode": tax_code,
        "taxPercent": records.json_number(rate),
        "amountExcludingTax": records.json_number(net),
        "totalTaxAmount": records.json_number((net * rate / 100).quantize(TWO)),
    }
    data["netAmount"] = data["amountExcludingTax"]
    data["netTaxAmount"] = data["totalTaxAmount"]
    data["amountIncludingTax"] = records.json_number(net + Decimal(str(data["totalTaxAmount"])))
    return records.create(KIND, "salesInvoiceLine", data, internal_id=str(uuid.uuid4()))


def _refresh_totals(invoice: SandboxRecord) -> None:
    records.update(invoice, {**invoice.data, **_invoice_totals(invoice)})


def _notify(ctx: Context, entity: str, record: SandboxRecord, change_type: str) -> None:
    """Post a notification to every subscription watching this entity set (after the write commits)."""
    resource = f"/api/v2.0/companies({BC_COMPANY_ID})/{entity}({record.internal_id})"
    for subscription in SandboxRecord.objects.filter(kind=KIND, object_type="subscription").order_by("id"):
        watched = subscription.data.get("resource", "").rstrip("/")
        if watched.lower().endswith(f"/{entity.lower()}"):
            webhook_emit(
                system=ctx.system,
                event_type=f"{entity}.{change_type}",
                content=notification_body(subscription.data, resource, change_type),
                target_url=subscription.data["notificationUrl"],
            )


# --- handlers --------------------------------------------------------------------------------------------


def _route(rest: str) -> list[tuple[str, str | None]]:
    segments = []
    for part in [p for p in rest.split("/") if p]:
        match = SEGMENT.match(part) if not part.startswith("Microsoft.NAV.") else None
        if part.startswith("Microsoft.NAV."):
            segments.append((part, None))
        elif match is None:
            raise _error(404, "BadRequest_NotFound", f"The path segment '{part}' is not valid.")
        else:
            segments.append((match.group(1), match.group(2)))
    return segments


def _resolve(rest: str):
    """companies(<id>)/<set>[(<id>)][/<set>|/Microsoft.NAV.<action>] → (entity, id, child, company path)."""
    segments = _route(rest)
    if not segments:
        raise _error(404, "BadRequest_NotFound", "Give a company: companies(<id>)/<entity set>.")
    if segments[0][0] == "subscriptions":
        return "subscriptions", segments[0][1], None
    if segments[0][0] != "companies":
        raise _error(404, "BadRequest_NotFound", f"The entity set '{segments[0][0]}' does not exist at the API root.")
    if len(segments) == 1:
        return "companies", segments[0][1], None
    _company((segments[0][1] or "").strip("'"))
    entity, record_id = segments[1]
    if entity not in ENTITIES:
        raise _error(404, "BadRequest_NotFound", f"The entity set '{entity}' does not exist.")
    child = segments[2][0] if len(segments) > 2 else None
    if child is not None and (entity, child) not in (
        ("salesInvoices", "salesInvoiceLines"),
        ("salesInvoices", "Microsoft.NAV.post"),
    ):
        raise _error(404, "BadRequest_NotFound", f"The path {rest} does not exist.")
    return entity, record_id, child


def _company_row() -> dict:
    return {
        "id": BC_COMPANY_ID,
        "systemVersion": "24.0",
        "name": "CRONUS UK Ltd.",
        "displayName": "CRONUS UK Ltd.",
        "businessProfileId": "",
    }


def get(ctx: Context, rest: str) -> Answer:
    entity, record_id, child = _resolve(rest)
    if entity == "companies":
        if record_id:
            _company(record_id)
            return Answer(200, _company_row())
        return _listing(ctx, "companies", [_company_row()])
    if entity == "subscriptions":
        rows = [render(r) for r in SandboxRecord.objects.filter(kind=KIND, object_type="subscription").order_by("id")]
        return _listing(ctx, "subscriptions", rows)
    record_type = ENTITIES[entity][0]
    if record_id is None:
        rows = [render(r) for r in SandboxRecord.objects.filter(kind=KIND, object_type=record_type).order_by("id")]
        return _listing(ctx, rest, rows)
    record = _load(record_type, record_id, entity)
    if child == "salesInvoiceLines":
        lines = [
            render(r)
            for r in SandboxRecord.objects.filter(kind=KIND, object_type="salesInvoiceLine").order_by("id")
            if r.data.get("documentId") == record.internal_id
        ]
        return _listing(ctx, rest, lines)
    return Answer(200, render(record))


def post(ctx: Context, rest: str) -> Answer:
    entity, record_id, child = _resolve(rest)
    if entity == "subscriptions":
        return _subscribe(ctx)
    if entity in READ_ONLY or entity == "companies":
        raise _error(405, "BadRequest_MethodNotAllowed", f"'{entity}' cannot be created through the API.")
    record_type, fields_spec, required = ENTITIES[entity]
    if record_id is not None:
        invoice = _load(record_type, record_id, entity)
        if child == "Microsoft.NAV.post":
            return _post_invoice(ctx, invoice)
        if child == "salesInvoiceLines":
            line = _add_line(invoice, ctx.json())
            _refresh_totals(invoice)
            return Answer(201, render(line))
        raise _error(405, "BadRequest_MethodNotAllowed", "POST is not allowed on a single record.")
    body = ctx.json()
    line_bodies = body.pop("salesInvoiceLines", None) if entity == "salesInvoices" else None
    data = _clean(fields_spec, body, entity=entity)
    missing = [name for name in required if not data.get(name)]
    if missing:
        raise _error(
            400, "Internal_ValidationError", f"The field {missing[0]} of table {record_type} must have a value."
        )
    if entity in ("customers", "projects"):
        same = [
            r
            for r in SandboxRecord.objects.filter(kind=KIND, object_type=record_type)
            if data.get("number") and r.data.get("number") == data["number"]
        ]
        if same:
            raise _error(
                400,
                "Internal_EntityWithSameKeyExists",
                f"The record in table {record_type.title()} already exists. "
                f"Identification fields and values: No.='{data['number']}'",
            )
        if not data.get("number"):
            count = SandboxRecord.objects.filter(kind=KIND, object_type=record_type).count()
            data["number"] = f"{'C' if entity == 'customers' else 'PR'}{10010 + count * 10}"
    if entity == "customers":
        data = {"type": "Company", "currencyCode": "", "blocked": " ", **data}
    if entity == "salesInvoices":
        customer = records.find(KIND, "customer", data["customerId"])
        count = SandboxRecord.objects.filter(kind=KIND, object_type="salesInvoice").count()
        data = {
            "number": f"S-INV{103001 + count}",
            "status": "Draft",
            "customerNumber": customer.data.get("number"),
            "customerName": customer.data.get("displayName"),
            "currencyCode": customer.data.get("currencyCode", ""),
            "invoiceDate": timezone.localdate().isoformat(),
            "paidAmount": 0,
            **data,
        }
        if not data.get("dueDate"):  # the customer's payment terms: the sandbox's are 30 days net
            issued = datetime.date.fromisoformat(data["invoiceDate"])
            data["dueDate"] = (issued + datetime.timedelta(days=PAYMENT_TERMS_DAYS)).isoformat()
    if entity == "customerPayments":
        return _pay(ctx, data)
    data["lastModifiedDateTime"] = _now_iso()
    record = records.create(KIND, record_type, data, internal_id=str(uuid.uuid4()))
    if line_bodies:
        if not isinstance(line_bodies, list):
            raise _error(400, "BadRequest", "salesInvoiceLines must be a list (deep insert).")
        for line in line_bodies:
            _add_line(record, line)
        _refresh_totals(record)
    elif entity == "salesInvoices":
        _refresh_totals(record)
    return Answer(201, render(record), {"Location": ctx.url(f"{API_ROOT}/{rest}({record.internal_id})")})


def _post_invoice(ctx: Context, invoice: SandboxRecord) -> Answer:
    if invoice.data.get("status") != "Draft":
        raise _error(400, "Internal_DocumentNotDraft", f"Sales invoice {invoice.data.get('number')} is already posted.")
    if Decimal(str(invoice.data.get("totalAmountIncludingTax", 0))) <= 0:
        raise _error(400, "Internal_ValidationError", "There is nothing to post.")
    records.update(invoice, {**invoice.data, "status": "Open", "lastModifiedDateTime": _now_iso()})
    _notify(ctx, "salesInvoices", invoice, "updated")
    return Answer(204)


def _pay(ctx: Context, data: dict) -> Answer:
    """A customer payment, applied to the invoice it names (the sandbox posts the journal line at once)."""
    amount = Decimal(str(data["amount"]))
    if amount <= 0:
        raise _error(400, "Internal_ValidationError", "Amount must be positive for a customer payment.")
    invoice_id = data.get("appliesToInvoiceId")
    if invoice_id:
        invoice = records.find(KIND, "salesInvoice", invoice_id)
        if invoice.data.get("customerId") != data["customerId"]:
            raise _error(400, "Internal_ValidationError", "The invoice applied to belongs to another customer.")
        if invoice.data.get("status") == "Draft":
            raise _error(400, "Internal_ValidationError", f"Sales invoice {invoice.data.get('number')} is not posted.")
        remaining = Decimal(str(invoice.data.get("remainingAmount", 0)))
        if amount > remaining:
            raise _error(
                400, "Internal_ValidationError", f"Amount {amount} is more than the remaining amount {remaining}."
            )
        paid = Decimal(str(invoice.data.get("paidAmount", 0))) + amount
        status = "Paid" if paid >= Decimal(str(invoice.data["totalAmountIncludingTax"])) else "Open"
        records.update(
            invoice,
            {
                **invoice.data,
                "paidAmount": records.json_number(paid),
                "status": status,
                "remainingAmount": records.json_number(remaining - amount),
                "lastModifiedDateTime": _now_iso(),
            },
        )
        data["appliesToInvoiceNumber"] = invoice.data.get("number")
        _notify(ctx, "salesInvoices", invoice, "updated")
    data["lastModifiedDateTime"] = _now_iso()
    record = records.create(KIND, "customerPayment", data, internal_id=str(uuid.uuid4()))
    _notify(ctx, "customerPayments", record, "created")
    return Answer(201, render(record))


def patch(ctx: Context, rest: str) -> Answer:
    entity, record_id, child = _resolve(rest)
    if record_id is None or child is not None or entity in READ_ONLY or entity == "companies":
        raise _error(405, "BadRequest_MethodNotAllowed", "PATCH needs one record: <entity set>(<id>).")
    if entity == "subscriptions":
        record = _load("subscription", record_id, entity)
        _check_if_match(ctx, record)
        body = ctx.json()
        data = {**record.data, **{k: v for k, v in body.items() if k in ("notificationUrl", "clientState")}}
        _handshake(data["notificationUrl"])
        data["expirationDateTime"] = (timezone.now() + datetime.timedelta(days=SUBSCRIPTION_DAYS)).isoformat()
        records.update(record, data)
        return Answer(200, render(record))
    record_type, fields_spec, _ = ENTITIES[entity]
    record = _load(record_type, record_id, entity)
    _check_if_match(ctx, record)
    if entity == "salesInvoices" and record.data.get("status") != "Draft":
        raise _error(
            400,
            "Internal_DocumentNotDraft",
            f"Sales invoice {record.data.get('number')} is posted and cannot be changed.",
        )
    changes = _clean(fields_spec, ctx.json(), entity=entity)
    if changes.get("number") and changes["number"] != record.data.get("number"):
        if any(
            r.data.get("number") == changes["number"]
            for r in SandboxRecord.objects.filter(kind=KIND, object_type=record_type)
        ):
            raise _error(
                400,
                "Internal_EntityWithSameKeyExists",
                f"The record in table {record_type.title()} already exists. "
                f"Identification fields and values: No.='{changes['number']}'",
            )
    records.update(record, {**record.data, **changes, "lastModifiedDateTime": _now_iso()})
    return Answer(200, render(record))


def delete(ctx: Context, rest: str) -> Answer:
    entity, record_id, child = _resolve(rest)
    if entity != "subscriptions" or record_id is None:
        raise _error(405, "BadRequest_MethodNotAllowed", "Only subscriptions can be deleted in this sandbox.")
    record = _load("subscription", record_id, entity)
    _check_if_match(ctx, record)
    record.delete()
    return Answer(204)


# --- webhook subscriptions -------------------------------------------------------------------------------


def _handshake(url: str) -> None:
    """Call the notification URL with a validationToken; it must answer 200 with the token as its body."""
    token = uuid.uuid4().hex
    separator = "&" if "?" in url else "?"
    try:
        response = requests.post(f"{url}{separator}validationToken={token}", timeout=HANDSHAKE_TIMEOUT)
    except requests.RequestException as exc:
        raise _error(
            400, "BadRequest", f"The subscription handshake failed: the notificationUrl could not be reached ({exc})."
        ) from exc
    if response.status_code != 200 or response.text.strip() != token:
        raise _error(
            400,
            "BadRequest",
            f"The subscription handshake failed: the notificationUrl answered {response.status_code} without "
            "echoing the validationToken.",
        )


def _subscribe(ctx: Context) -> Answer:
    body = ctx.json()
    url, resource = body.get("notificationUrl"), body.get("resource")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _error(400, "BadRequest", "notificationUrl must be an absolute http(s) URL.")
    if not isinstance(resource, str) or not resource:
        raise _error(
            400,
            "BadRequest",
            "resource must name the entity set to watch, e.g. /api/v2.0/companies(<id>)/salesInvoices.",
        )
    client_state = body.get("clientState") or ""
    if len(client_state) > 2048:
        raise _error(400, "BadRequest", "clientState may be at most 2048 characters.")
    _handshake(url)
    subscription_id = uuid.uuid4().hex  # notifications go to the URL on every change of the watched entity set
    data = {
        "subscriptionId": subscription_id,
        "notificationUrl": url,
        "resource": resource,
        "clientState": client_state,
        "userId": "00000000-0000-0000-0000-000000000001",
        "lastModifiedDateTime": _now_iso(),
        "expirationDateTime": (timezone.now() + datetime.timedelta(days=SUBSCRIPTION_DAYS)).isoformat(),
    }
    record = records.create(KIND, "subscription", data, internal_id=subscription_id)
    return Answer(201, render(record))


def notification_body(subscription: dict, resource: str, change_type: str) -> dict:
    """The notification Business Central posts for one change: a value list carrying the clientState."""
    return {
        "value": [
            {
                "subscriptionId": subscription["subscriptionId"],
                "clientState": subscription.get("clientState", ""),
                "expirationDateTime": subscription["expirationDateTime"],
                "resource": resource,
                "changeType": change_type,
                "lastModifiedDateTime": _now_iso(),
            }
        ]
    }


api_view = endpoint(KIND, GET=get, POST=post, PATCH=patch, DELETE=delete)
anything_else = not_found(KIND)

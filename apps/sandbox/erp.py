"""The ERP sandbox, shaped after NetSuite's REST record service: upsert by external ID, lists, reference data."""

import datetime
import re
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from django.utils import timezone

from . import records
from .common import Answer, Context, VendorError, endpoint, not_found
from .models import SandboxRecord

KIND = "erp"
BASE_PATH = "/sandbox/erp/services/rest/record/v1"
ID_START = {"customer": 1001, "job": 2001, "invoice": 5001, "customerPayment": 8001}
WRITABLE = tuple(ID_START)
REFERENCE = ("subsidiary", "currency", "salesTaxItem", "currencyRate", "department", "classification", "item")
NAME_FIELD = {
    "customer": "companyName",
    "job": "companyName",
    "invoice": "tranId",
    "customerPayment": "tranId",
    "subsidiary": "name",
    "currency": "symbol",
    "salesTaxItem": "itemId",
    "item": "itemId",
    "department": "name",
    "classification": "name",
}
# Computed by the sandbox; values sent for them are ignored, as NetSuite ignores read-only fields.
COMPUTED = {"id", "links", "externalId", "lastModifiedDate", "dateCreated", "subtotal", "taxTotal", "total"}
COMPUTED |= {"amountRemaining", "amountPaid", "status", "applied", "unapplied"}
MAX_LIMIT = 1000
Q_FILTER = re.compile(r'^\s*lastModifiedDate\s+(ON_OR_AFTER|AFTER)\s+"(\d{4}-\d{2}-\d{2})[^"]*"\s*$')
# q=<field> IS "<value>" (a quote inside the value escaped as \"), on the fields a customer is looked up by.
Q_IS = re.compile(r'^\s*(companyName|email|vatRegNumber|externalId)\s+IS\s+"((?:[^"\\]|\\.)*)"\s*$')
ZERO = Decimal("0")


def user_error(message: str, field: str | None = None, code: str = "USER_ERROR") -> VendorError:
    return VendorError(400, code, message, param=field)


def _record_type(record_type: str, *, write: bool = False) -> str:
    if record_type not in WRITABLE and record_type not in REFERENCE:
        raise VendorError(404, "INVALID_RCRD_TYPE", f"Record type '{record_type}' does not exist in this account.")
    if write and record_type not in WRITABLE:
        raise VendorError(405, "INVALID_METHOD", f"The {record_type} records are read-only reference data here.")
    return record_type


def _self_link(ctx: Context, record_type: str, internal_id: str) -> list:
    return [{"rel": "self", "href": ctx.url(f"{BASE_PATH}/{record_type}/{internal_id}")}]


def _netsuite_time(moment) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render(ctx: Context, record: SandboxRecord) -> dict:
    """A record as NetSuite answers GET: links, id, externalId, fields, dates."""
    body = {"links": _self_link(ctx, record.object_type, record.internal_id), "id": record.internal_id}
    if record.external_id:
        body["externalId"] = record.external_id
    body.update(record.data)
    body["dateCreated"] = _netsuite_time(record.created_at)
    body["lastModifiedDate"] = _netsuite_time(record.updated_at)
    return body


def _find(record_type: str, ref: str) -> SandboxRecord | None:
    if ref.startswith("eid:"):
        return records.find_external(KIND, record_type, ref[4:])
    return records.find(KIND, record_type, ref)


def _load(record_type: str, ref: str) -> SandboxRecord:
    record = _find(record_type, ref)
    if record is None:
        raise VendorError(
            404,
            "NONEXISTENT_ID",
            f"The record instance does not exist. Provide a valid record instance ID ({record_type} {ref}).",
        )
    return record


# --- validation ------------------------------------------------------------------------------------------


def _missing(field: str) -> VendorError:
    return user_error(f"Please enter value(s) for: {field}", field)


def _reference(data: dict, field: str, targets: tuple[str, ...], *, required: bool = True, path: str | None = None):
    """A {"id"} or {"externalId"} reference resolved to the record it names; a 400 naming the field if none."""
    path = path or field
    value = data.get(field)
    if value in (None, "", {}):
        if required:
            raise _missing(path)
        return None
    if not isinstance(value, dict) or not (value.get("id") or value.get("externalId")):
        raise user_error(f'{path} must be a reference such as {{"id": "1"}}.', path, "INVALID_KEY_OR_REF")
    for target in targets:
        if value.get("id"):
            found = records.find(KIND, target, str(value["id"]))
        else:
            found = records.find_external(KIND, target, str(value["externalId"]))
        if found is not None:
            return found
    key = value.get("id") or f"eid:{value.get('externalId')}"
    raise user_error(f"Invalid {path} reference key {key}.", path, "INVALID_KEY_OR_REF")


def _ref_value(record: SandboxRecord) -> dict:
    return {"id": record.internal_id, "refName": str(record.data.get(NAME_FIELD.get(record.object_type, ""), ""))}


def _text(data: dict, field: str, *, required: bool = False) -> str | None:
    value = data.get(field)
    if value in (None, ""):
        if required:
            raise _missing(field)
        return None
    if not isinstance(value, str):
        raise user_error(f"Invalid value for {field}: expected text.", field)
    return value


def _date(data: dict, field: str, *, required: bool = False) -> datetime.date | None:
    value = data.get(field)
    if value in (None, ""):
        if required:
            raise _missing(field)
        return None
    parsed = records.iso_date_or_none(value)
    if parsed is None:
        raise user_error(f"Invalid date value for {field}: {value!r}; use YYYY-MM-DD.", field)
    return parsed


def _number(value, field: str, *, required: bool = True, positive: bool = False) -> Decimal | None:
    if value in (None, ""):
        if required:
            raise _missing(field)
        return None
    number = records.decimal_or_none(value)
    if number is None:
        raise user_error(f"Invalid number for {field}: {value!r}.", field)
    if positive and number <= 0:
        raise user_error(f"{field} must be greater than zero, not {value}.", field)
    return number


def _plain(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def _money(number: Decimal) -> Decimal:
    return number.quantize(records.CENT, rounding=ROUND_HALF_UP)


def _entity_currency(entity: SandboxRecord) -> dict | None:
    return entity.data.get("currency")


def _clean_customer(data: dict, *, existing: SandboxRecord | None, internal_id: str) -> dict:
    _text(data, "companyName", required=True)
    data["subsidiary"] = _ref_value(_reference(data, "subsidiary", ("subsidiary",)))
    data["currency"] = _ref_value(_reference(data, "currency", ("currency",)))
    parent = _reference(data, "parent", ("customer",), required=False)
    if parent is not None:
        if parent.internal_id == internal_id:
            raise user_error("A customer cannot be its own parent.", "parent")
        data["parent"] = _ref_value(parent)
    _text(data, "email")
    return data


def _clean_job(data: dict, *, existing: SandboxRecord | None, internal_id: str) -> dict:
    _text(data, "companyName", required=True)
    parent = _reference(data, "parent", ("customer",))
    data["parent"] = _ref_value(parent)
    subsidiary = _reference(data, "subsidiary", ("subsidiary",), required=False)
    data["subsidiary"] = _ref_value(subsidiary) if subsidiary else parent.data.get("subsidiary")
    currency = _reference(data, "currency", ("currency",), required=False)
    data["currency"] = _ref_value(currency) if currency else _entity_currency(parent)
    start, end = _date(data, "startDate"), _date(data, "projectedEndDate")
    if start and end and end < start:
        raise user_error(f"projectedEndDate {end} is before startDate {start}.", "projectedEndDate")
    return data


def _clean_invoice(data: dict, *, existing: SandboxRecord | None, internal_id: str) -> dict:
    entity = _reference(data, "entity", ("customer", "job"))
    if existing is None and entity.data.get("isInactive"):
        name = entity.data.get("companyName") or entity.internal_id
        raise user_error(
            f"{name} is inactive; transactions cannot be entered for an inactive customer.", "entity", "INACTIVE_RECORD"
        )
    data["entity"] = _ref_value(entity)
    _date(data, "tranDate", required=True)
    _date(data, "dueDate")
    currency = _reference(data, "currency", ("currency",), required=False)
    data["currency"] = _ref_value(currency) if currency else _entity_currency(entity)
    sublist = data.get("item")
    lines = sublist.get("items") if isinstance(sublist, dict) else None
    if not isinstance(lines, list) or not lines:
        raise _missing("item.items")
    subtotal = tax_total = ZERO
    cleaned_lines = []
    for index, line in enumerate(lines):
        where = f"item.items[{index}]"
        if not isinstance(line, dict):
            raise user_error(f"{where} must be an object.", where)
        item = _reference(line, "item", ("item",), path=f"{where}.item")
        tax_code = _reference(line, "taxCode", ("salesTaxItem",), path=f"{where}.taxCode")
        amount = _money(_number(line.get("amount"), f"{where}.amount"))
        quantity = _number(line.get("quantity"), f"{where}.quantity", positive=True)
        rate = records.decimal_or_none(tax_code.data.get("rate")) or ZERO
        tax = _money(amount * rate / 100)
        subtotal, tax_total = subtotal + amount, tax_total + tax
        cleaned_lines.append(
            {
                **line,
                "item": _ref_value(item),
                "taxCode": _ref_value(tax_code),
                "amount": records.json_number(amount),
                "quantity": _plain(quantity),
                "taxRate1": _plain(rate),
                "tax1Amt": records.json_number(tax),
            }
        )
    total = subtotal + tax_total
    if total < 0:
        raise user_error(f"The invoice total would be negative ({total}); send a credit memo instead.", "item.items")
    paid = records.decimal_or_none((existing.data if existing else {}).get("amountPaid")) or ZERO
    if total < paid:
        raise user_error(
            f"The invoice total {total} would be less than the {paid} already paid on it; "
            "reverse the payment before lowering the invoice.",
            "item.items",
        )
    data["item"] = {**sublist, "items": cleaned_lines}
    data["tranId"] = _text(data, "tranId") or (existing.data.get("tranId") if existing else None) or f"INV{internal_id}"
    data.update(_invoice_balance(total, paid))
    data["subtotal"] = records.json_number(subtotal)
    data["taxTotal"] = records.json_number(tax_total)
    return data


def _invoice_balance(total: Decimal, paid: Decimal) -> dict:
    remaining = total - paid
    return {
        "total": records.json_number(total),
        "amountPaid": records.json_number(paid),
        "amountRemaining": records.json_number(remaining),
        "status": "Paid In Full" if remaining == 0 and total > 0 else "Open",
    }


def _applications(data: dict) -> dict[str, Decimal]:
    """Invoice internal id → amount, from a payment's stored apply sublist."""
    applied: dict[str, Decimal] = {}
    for line in (data.get("apply") or {}).get("items") or []:
        invoice_id = line["doc"]["id"]
        applied[invoice_id] = applied.get(invoice_id, ZERO) + Decimal(str(line["amount"]))
    return applied


def _clean_payment(data: dict, *, existing: SandboxRecord | None, internal_id: str) -> dict:
    customer = _reference(data, "customer", ("customer",))
    data["customer"] = _ref_value(customer)
    payment = _money(_number(data.get("payment"), "payment", positive=True))
    data["payment"] = records.json_number(payment)
    data["tranDate"] = (_date(data, "tranDate") or timezone.localdate()).isoformat()
    currency = _reference(data, "currency", ("currency",), required=False)
    data["currency"] = _ref_value(currency) if currency else _entity_currency(customer)
    sublist = data.get("apply")
    lines = sublist.get("items") if isinstance(sublist, dict) else None
    if not isinstance(lines, list) or not lines:
        raise _missing("apply.items")
    cleaned_lines, invoices = [], {}
    for index, line in enumerate(lines):
        where = f"apply.items[{index}]"
        if not isinstance(line, dict):
            raise user_error(f"{where} must be an object.", where)
        invoice = _reference(line, "doc", ("invoice",), path=f"{where}.doc")
        owner = records.find(KIND, "customer", invoice.data["entity"]["id"]) or records.find(
            KIND, "job", invoice.data["entity"]["id"]
        )
        owners = {owner.internal_id} if owner.object_type == "customer" else {owner.data["parent"]["id"]}
        if customer.internal_id not in owners:
            raise user_error(
                f"Invoice {invoice.data.get('tranId')} belongs to another customer; it cannot take this payment.",
                f"{where}.doc",
            )
        amount = _money(_number(line.get("amount"), f"{where}.amount", positive=True))
        invoices[invoice.internal_id] = invoice
        cleaned_lines.append({**line, "doc": _ref_value(invoice), "amount": records.json_number(amount), "apply": True})
    data["apply"] = {**sublist, "items": cleaned_lines}
    applied = sum(_applications(data).values(), ZERO)
    if applied > payment:
        raise user_error(f"The amounts applied to invoices ({applied}) exceed the payment ({payment}).", "apply.items")
    data["applied"] = records.json_number(applied)
    data["unapplied"] = records.json_number(payment - applied)
    data["tranId"] = (
        _text(data, "tranId") or (existing.data.get("tranId") if existing else None) or f"PYMT{internal_id}"
    )
    _settle(invoices, old=_applications(existing.data) if existing else {}, new=_applications(data))
    return data


def _settle(invoices: dict, *, old: dict, new: dict) -> None:
    """Move the invoices' paid and remaining amounts from the payment's old applications to its new ones."""
    for invoice_id in sorted(set(old) | set(new)):
        invoice = invoices.get(invoice_id) or records.find(KIND, "invoice", invoice_id)
        total = Decimal(str(invoice.data["total"]))
        paid_before = Decimal(str(invoice.data.get("amountPaid", 0))) - old.get(invoice_id, ZERO)
        paid = paid_before + new.get(invoice_id, ZERO)
        if paid > total:
            raise user_error(
                f"The payment applies {new[invoice_id]} to invoice {invoice.data.get('tranId')}, but only "
                f"{total - paid_before} is still open on it. Overpayments are not accepted; apply at most the "
                "amount remaining.",
                "apply.items",
            )
        records.update(invoice, {**invoice.data, **_invoice_balance(total, paid)})


CLEANERS = {
    "customer": _clean_customer,
    "job": _clean_job,
    "invoice": _clean_invoice,
    "customerPayment": _clean_payment,
}


def _fields(body: dict) -> dict:
    return {name: value for name, value in body.items() if name not in COMPUTED}


def _save(ctx: Context, record_type: str, fields: dict, *, existing: SandboxRecord | None, external_id: str | None):
    """Create or update one record after checking it; answers 204 with its Location, as NetSuite does."""
    if existing is None:
        internal_id = records.next_number(KIND, record_type, start=ID_START[record_type])
        data = CLEANERS[record_type](dict(fields), existing=None, internal_id=internal_id)
        record = records.create(KIND, record_type, data, internal_id=internal_id, external_id=external_id)
    else:
        data = CLEANERS[record_type]({**existing.data, **fields}, existing=existing, internal_id=existing.internal_id)
        records.update(existing, data, external_id=external_id)
        record = existing
    return Answer(204, headers={"Location": ctx.url(f"{BASE_PATH}/{record_type}/{record.internal_id}")})


# --- endpoints -------------------------------------------------------------------------------------------


def create(ctx: Context, record_type: str) -> Answer:
    """POST {record}: create (an externalId in the body must be new)."""
    _record_type(record_type, write=True)
    body = ctx.json()
    external_id = body.get("externalId") or None
    if external_id is not None and records.find_external(KIND, record_type, str(external_id)):
        raise user_error(f"A {record_type} with externalId {external_id} already exists.", "externalId", "DUP_ENTITY")
    return _save(ctx, record_type, _fields(body), existing=None, external_id=external_id and str(external_id))


def upsert(ctx: Context, record_type: str, ref: str) -> Answer:
    """PUT {record}/eid:{externalId}: create the record or update the one with that external ID."""
    _record_type(record_type, write=True)
    if not ref.startswith("eid:") or not ref[4:]:
        raise user_error(
            f"PUT upserts by external ID: use {record_type}/eid:<externalId>, or PATCH {record_type}/{ref}.", None
        )
    external_id = ref[4:]
    body = ctx.json()
    if body.get("externalId") not in (None, external_id):
        raise user_error(
            f"The body's externalId {body['externalId']!r} differs from the URL's {external_id!r}.", "externalId"
        )
    existing = records.find_external(KIND, record_type, external_id)
    return _save(ctx, record_type, _fields(body), existing=existing, external_id=external_id)


def patch(ctx: Context, record_type: str, ref: str) -> Answer:
    """PATCH {record}/{id} or {record}/eid:{externalId}: update the fields sent (an externalId sent is set, if free)."""
    _record_type(record_type, write=True)
    existing = _load(record_type, ref)
    body = ctx.json()
    external_id = existing.external_id
    if body.get("externalId") not in (None, "", existing.external_id):
        external_id = str(body["externalId"])
        holder = records.find_external(KIND, record_type, external_id)
        if holder is not None and holder.pk != existing.pk:
            raise user_error(
                f"A {record_type} with externalId {external_id} already exists.", "externalId", "DUP_ENTITY"
            )
    fields = {name: value for name, value in _fields(body).items() if name != "externalId"}
    return _save(ctx, record_type, fields, existing=existing, external_id=external_id)


def read(ctx: Context, record_type: str, ref: str) -> Answer:
    """GET {record}/{id} or {record}/eid:{externalId}."""
    _record_type(record_type)
    return Answer(200, render(ctx, _load(record_type, ref)))


def _query_param(ctx: Context, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = ctx.request.GET.get(name, str(default))
    if not raw.isdigit() or int(raw) < minimum or (maximum and int(raw) > maximum):
        upper = f" and at most {maximum}" if maximum else ""
        raise user_error(f"The {name} parameter must be a whole number of at least {minimum}{upper}.", name)
    return int(raw)


def listing(ctx: Context, record_type: str) -> Answer:
    """GET {record}?limit=&offset=&q=: NetSuite's list shape (reference data lists carry the fields too)."""
    _record_type(record_type)
    limit = _query_param(ctx, "limit", MAX_LIMIT, minimum=1, maximum=MAX_LIMIT)
    offset = _query_param(ctx, "offset", 0, minimum=0)
    queryset = SandboxRecord.objects.filter(kind=KIND, object_type=record_type)
    q = ctx.request.GET.get("q")
    if q and Q_IS.match(q):
        field, value = Q_IS.match(q).groups()
        value = re.sub(r"\\(.)", r"\1", value)
        if field == "externalId":
            queryset = queryset.filter(external_id=value)
        else:
            queryset = queryset.filter(**{f"data__{field}__iexact": value})
    elif q:
        match = Q_FILTER.match(q)
        if match is None:
            raise user_error(
                'The sandbox understands q=lastModifiedDate ON_OR_AFTER "YYYY-MM-DD" (or AFTER), and '
                '<companyName|email|vatRegNumber|externalId> IS "<value>", only.',
                "q",
            )
        day = datetime.date.fromisoformat(match.group(2))
        if match.group(1) == "AFTER":
            day += datetime.timedelta(days=1)
        queryset = queryset.filter(updated_at__gte=datetime.datetime.combine(day, datetime.time.min, datetime.UTC))
    page_records, total = records.page(queryset, offset=offset, limit=limit)
    items = []
    for record in page_records:
        item = {"links": _self_link(ctx, record_type, record.internal_id), "id": record.internal_id}
        if record_type in REFERENCE:
            item.update(record.data)
        items.append(item)

    def link(rel: str, at: int) -> dict:
        query = urlencode({"limit": limit, "offset": at, **({"q": q} if q else {})})
        return {"rel": rel, "href": ctx.url(f"{BASE_PATH}/{record_type}?{query}")}

    has_more = offset + len(items) < total
    links = [link("self", offset), link("first", 0)]
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    if has_more:
        links.append(link("next", offset + limit))
    links.append(link("last", max(0, (total - 1) // limit * limit)))
    body = {
        "links": links,
        "count": len(items),
        "hasMore": has_more,
        "items": items,
        "offset": offset,
        "totalResults": total,
    }
    return Answer(200, body)


collection_view = endpoint(KIND, GET=listing, POST=create)
record_view = endpoint(KIND, GET=read, PUT=upsert, PATCH=patch)
anything_else = not_found(KIND)

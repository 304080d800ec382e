"""The Stripe sandbox, shaped after Stripe's API: form-encoded writes, customers, products, invoice items, invoices.

Amounts are integers in the currency's smallest unit and currencies lower case, as Stripe writes them.
Pending invoice items are pulled into the next invoice created for their customer
(`pending_invoice_items_behavior=include`); an invoice is finalized (numbered, open) and paid, out of band
for money received elsewhere. Finalizing sends `invoice.finalized` and paying `invoice.paid` to the sandbox's
webhook URL, signed with its webhook secret in `Stripe-Signature`. Customers are found with
`GET customers?email=` (exact) and `GET customers/search?query=` (Stripe's search language, the clauses on
email, name and metadata that matching uses). Writes honour `Idempotency-Key` (a replay
answers `Idempotent-Replayed: true`) and errors come as Stripe's `{"error": {"type", "code", "message", "param"}}`.
"""

import re

from django.utils import timezone

from . import records
from .common import Answer, Context, VendorError, endpoint, not_found
from .models import SandboxRecord

KIND = "stripe"
CURRENCIES = {"usd", "gbp", "eur", "cad", "aud", "jpy"}
ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
DAYS = 86_400
PREFIXES = {"customer": "cus_", "product": "prod_", "invoiceitem": "ii_", "invoice": "in_"}


def param_error(param: str, message: str, code: str = "parameter_invalid") -> VendorError:
    return VendorError(400, code, message, param=param)


def _missing(what: str, record_id: str) -> VendorError:
    return VendorError(404, "resource_missing", f"No such {what}: '{record_id}'", param="id")


def _text(params: dict, name: str, *, required: bool = False, max_length: int = 5000):
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise param_error(name, f"Missing required param: {name}.", "parameter_missing")
        return None
    if not isinstance(value, str):
        raise param_error(name, f"Invalid {name}: must be a string.")
    if len(value) > max_length:
        raise param_error(name, f"Invalid {name}: must be at most {max_length} characters.")
    return value


def _integer(params: dict, name: str, *, required: bool = False, minimum: int | None = None):
    value = _text(params, name, required=required)
    if value is None:
        return None
    if not re.fullmatch(r"-?\d+", value):
        raise param_error(name, f"Invalid integer: {value}")
    number = int(value)
    if minimum is not None and number < minimum:
        raise param_error(name, f"Invalid {name}: must be at least {minimum}.")
    return number


def _currency(params: dict, *, required: bool = True) -> str | None:
    value = _text(params, "currency", required=required)
    if value is None:
        return None
    if value.lower() not in CURRENCIES:
        raise param_error("currency", f"Invalid currency: {value}. Stripe currencies are ISO codes in lower case.")
    return value.lower()


def _metadata(params: dict, current: dict | None = None) -> dict:
    metadata = dict(current or {})
    given = params.get("metadata")
    if given in (None, ""):
        return metadata
    if not isinstance(given, dict):
        raise param_error("metadata", "Invalid metadata: send metadata[key]=value pairs.")
    for key, value in given.items():
        if value in (None, ""):
            metadata.pop(key, None)  # Stripe: an empty value unsets the key
        else:
            metadata[key] = value
    return metadata


def _new_id(params: dict, object_type: str) -> str:
    record_id = _text(params, "id", max_length=100)
    if record_id is None:
        return records.random_id(PREFIXES[object_type], 14)
    if not ID_PATTERN.match(record_id):
        raise param_error("id", "Invalid id: use letters, digits, - and _ only.")
    if records.find(KIND, object_type, record_id) is not None:
        raise param_error("id", f"{object_type.title()} already exists.", "resource_already_exists")
    return record_id


def _load(object_type: str, record_id: str) -> SandboxRecord:
    record = records.find(KIND, object_type, record_id)
    if record is None:
        raise _missing(object_type, record_id)
    return record


def render(record: SandboxRecord) -> dict:
    """A Stripe object: id, object, created (Unix seconds), livemode false, then its data."""
    return {
        "id": record.internal_id,
        "object": record.object_type,
        "created": int(record.created_at.timestamp()),
        "livemode": False,
        **record.data,
    }


def _listing(ctx: Context, object_type: str, path: str, **filters) -> Answer:
    """A Stripe list: {"object": "list", "data", "has_more", "url"}, paged by starting_after, newest first."""
    query = ctx.request.GET
    try:
        limit = min(MAX_LIMIT, max(1, int(query.get("limit", DEFAULT_LIMIT))))
    except ValueError as exc:
        raise param_error("limit", f"Invalid integer: {query.get('limit')}") from exc
    queryset = SandboxRecord.objects.filter(kind=KIND, object_type=object_type).order_by("-id")
    rows = [record for record in queryset if all(record.data.get(k) == v for k, v in filters.items() if v)]
    after = query.get("starting_after")
    if after:
        ids = [record.internal_id for record in rows]
        if after not in ids:
            raise _missing(object_type, after)
        rows = rows[ids.index(after) + 1 :]
    page = rows[:limit]
    return Answer(
        200, {"object": "list", "data": [render(r) for r in page], "has_more": len(rows) > limit, "url": path}
    )


# --- customers -------------------------------------------------------------------------------------------


def _customer_fields(params: dict, current: dict | None = None) -> dict:
    fields = dict(
        current
        or {
            "name": None,
            "email": None,
            "description": None,
            "balance": 0,
            "currency": None,
            "delinquent": False,
            "metadata": {},
        }
    )
    for name in ("name", "email", "description"):
        if name in params:
            fields[name] = _text(params, name, max_length=512 if name == "email" else 5000)
    if fields.get("email") and "@" not in fields["email"]:
        raise param_error("email", f"Invalid email address: {fields['email']}", "email_invalid")
    fields["metadata"] = _metadata(params, fields.get("metadata"))
    return fields


def customer_create(ctx: Context) -> Answer:
    params = ctx.form()
    record = records.create(KIND, "customer", _customer_fields(params), internal_id=_new_id(params, "customer"))
    return Answer(200, render(record))


def customer_read(ctx: Context, record_id: str) -> Answer:
    return Answer(200, render(_load("customer", record_id)))


def customer_update(ctx: Context, record_id: str) -> Answer:
    record = _load("customer", record_id)
    records.update(record, _customer_fields(ctx.form(), record.data))
    return Answer(200, render(record))


def customer_list(ctx: Context) -> Answer:
    return _listing(ctx, "customer", "/v1/customers", email=ctx.request.GET.get("email"))


# Stripe's search query language, the part customers need: `field:'value'` (exact, case-insensitive) and
# `field~'value'` (substring, at least 3 characters) on email, name and metadata['key'], joined by AND or OR.
SEARCH_CLAUSE = re.compile(r"""\s*(email|name|metadata\['([^']+)'\])\s*([:~])\s*'((?:[^'\\]|\\.)*)'""")
SEARCH_LIMIT = 10  # Stripe allows at most 10 clauses in one query
SEARCH_JOIN = re.compile(r"\s+(AND|OR)\s+")


def _search_clauses(query: str) -> tuple[list, str]:
    """The clauses of a search query and how they are joined ("AND"/"OR"); a 400 in Stripe's words if invalid."""
    clauses, joins, position, text = [], set(), 0, query.strip()
    while True:
        match = SEARCH_CLAUSE.match(text, position)
        if not match:
            raise param_error("query", f"Could not parse the search query near: {text[position : position + 40]!r}.")
        field, metadata_key, operator, value = match.groups()
        value = re.sub(r"\\(.)", r"\1", value)
        if operator == "~" and len(value) < 3:
            raise param_error("query", "A substring search (~) needs at least 3 characters.")
        clauses.append((f"metadata.{metadata_key}" if metadata_key else field, operator, value))
        position = match.end()
        if position >= len(text):
            break
        join = SEARCH_JOIN.match(text, position)
        if not join:
            raise param_error("query", f"Could not parse the search query near: {text[position : position + 40]!r}.")
        joins.add(join.group(1))
        position = join.end()
    if len(joins) > 1:
        raise param_error("query", "Search queries cannot mix AND and OR.")
    if len(clauses) > SEARCH_LIMIT:
        raise param_error("query", f"A search query may have at most {SEARCH_LIMIT} clauses.")
    return clauses, (joins.pop() if joins else "AND")


def _clause_holds(data: dict, clause: tuple) -> bool:
    field, operator, value = clause
    if field.startswith("metadata."):
        found, value_seen = (data.get("metadata") or {}).get(field[9:]), value
        return found is not None and (str(found) == value_seen if operator == ":" else value in str(found))
    found = str(data.get(field) or "").casefold()
    return found == value.casefold() if operator == ":" else value.casefold() in found


def customer_search(ctx: Context) -> Answer:
    """GET customers/search?query=…&limit=&page=: {"object": "search_result", "data", "has_more", "next_page"}."""
    query = ctx.request.GET
    if not query.get("query"):
        raise param_error("query", "Missing required param: query.", "parameter_missing")
    clauses, join = _search_clauses(query["query"])
    try:
        limit = min(MAX_LIMIT, max(1, int(query.get("limit", DEFAULT_LIMIT))))
        offset = int(query.get("page") or 0)
    except ValueError as exc:
        raise param_error("page", "Invalid page: use the next_page of the previous answer.") from exc
    combine = all if join == "AND" else any
    rows = [
        record
        for record in SandboxRecord.objects.filter(kind=KIND, object_type="customer").order_by("-id")
        if combine(_clause_holds(record.data, clause) for clause in clauses)
    ]
    page, more = rows[offset : offset + limit], len(rows) > offset + limit
    body = {
        "object": "search_result",
        "data": [render(record) for record in page],
        "has_more": more,
        "next_page": str(offset + limit) if more else None,
        "url": "/v1/customers/search",
    }
    return Answer(200, body)


# --- products (a project's billing terms live on its product) ---------------------------------------------


def product_create(ctx: Context) -> Answer:
    params = ctx.form()
    record_id = _new_id(params, "product")
    data = {
        "name": _text(params, "name", required=True),
        "active": True,
        "description": _text(params, "description"),
        "metadata": _metadata(params),
    }
    return Answer(200, render(records.create(KIND, "product", data, internal_id=record_id)))


def product_read(ctx: Context, record_id: str) -> Answer:
    return Answer(200, render(_load("product", record_id)))


def product_update(ctx: Context, record_id: str) -> Answer:
    record = _load("product", record_id)
    params = ctx.form()
    data = {**record.data, "metadata": _metadata(params, record.data.get("metadata"))}
    for name in ("name", "description"):
        if name in params:
            data[name] = _text(params, name, required=name == "name")
    records.update(record, data)
    return Answer(200, render(record))


# --- invoice items and invoices ----------------------------------------------------------------------------


def invoiceitem_create(ctx: Context) -> Answer:
    """POST invoiceitems: a pending amount for a customer, pulled into the customer's next invoice."""
    params = ctx.form()
    customer = _load_param("customer", params)
    currency = _currency(params)
    amount = _integer(params, "amount", required=True)
    period = params.get("period") if isinstance(params.get("period"), dict) else {}
    data = {
        "customer": customer.internal_id,
        "amount": amount,
        "currency": currency,
        "description": _text(params, "description"),
        "period": {"start": _integer(period, "start") or 0, "end": _integer(period, "end") or 0},
        "invoice": None,
        "metadata": _metadata(params),
    }
    record = records.create(KIND, "invoiceitem", data, internal_id=_new_id(params, "invoiceitem"))
    return Answer(200, render(record))


def invoiceitem_list(ctx: Context) -> Answer:
    return _listing(ctx, "invoiceitem", "/v1/invoiceitems", customer=ctx.request.GET.get("customer"))


def _load_param(object_type: str, params: dict) -> SandboxRecord:
    record_id = _text(params, object_type, required=True)
    record = records.find(KIND, object_type, record_id)
    if record is None:
        raise VendorError(400, "resource_missing", f"No such {object_type}: '{record_id}'", param=object_type)
    return record


def invoice_create(ctx: Context) -> Answer:
    """POST invoices: a draft for a customer holding its pending invoice items (one currency per invoice)."""
    params = ctx.form()
    customer = _load_param("customer", params)
    method = _text(params, "collection_method") or "charge_automatically"
    if method not in ("charge_automatically", "send_invoice"):
        raise param_error("collection_method", f"Invalid collection_method: {method}")
    days = _integer(params, "days_until_due", minimum=0)
    if method == "send_invoice" and days is None:
        raise param_error("days_until_due", "Missing required param: days_until_due.", "parameter_missing")
    behaviour = _text(params, "pending_invoice_items_behavior") or "exclude"
    pending = []
    if behaviour == "include":
        pending = [
            item
            for item in SandboxRecord.objects.filter(kind=KIND, object_type="invoiceitem").order_by("id")
            if item.data.get("customer") == customer.internal_id and not item.data.get("invoice")
        ]
    if behaviour == "include" and not pending:
        raise VendorError(
            400, "invoice_no_customer_line_items", f"Nothing to invoice for customer {customer.internal_id}."
        )
    currency = _currency(params, required=False) or (pending[0].data["currency"] if pending else "usd")
    if any(item.data["currency"] != currency for item in pending):
        raise VendorError(
            400,
            "invoice_no_customer_line_items",
            "The customer has pending invoice items in more than one currency; invoice each currency separately.",
        )
    record_id = records.random_id("in_", 24)
    lines = [
        {
            "id": "il_" + item.internal_id[3:],
            "object": "line_item",
            "invoice_item": item.internal_id,
            "amount": item.data["amount"],
            "currency": currency,
            "description": item.data.get("description"),
            "period": item.data.get("period"),
            "quantity": 1,
            "metadata": item.data.get("metadata", {}),
        }
        for item in pending
    ]
    total = sum(line["amount"] for line in lines)
    now = int(timezone.now().timestamp())
    data = {
        "customer": customer.internal_id,
        "customer_email": customer.data.get("email"),
        "customer_name": customer.data.get("name"),
        "currency": currency,
        "collection_method": method,
        "days_until_due": days,
        "due_date": now + days * DAYS if days is not None else None,
        "status": "draft",
        "number": None,
        "description": _text(params, "description"),
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{record_id}/lines",
        },
        "subtotal": total,
        "tax": None,
        "total": total,
        "amount_due": total,
        "amount_paid": 0,
        "amount_remaining": total,
        "paid": False,
        "paid_out_of_band": False,
        "auto_advance": _text(params, "auto_advance") == "true",
        "status_transitions": {"finalized_at": None, "paid_at": None, "voided_at": None},
        "metadata": _metadata(params),
    }
    record = records.create(KIND, "invoice", data, internal_id=record_id)
    for item in pending:
        records.update(item, {**item.data, "invoice": record_id})
    return Answer(200, render(record))


def invoice_read(ctx: Context, record_id: str) -> Answer:
    return Answer(200, render(_load("invoice", record_id)))


def invoice_list(ctx: Context) -> Answer:
    query = ctx.request.GET
    return _listing(ctx, "invoice", "/v1/invoices", customer=query.get("customer"), status=query.get("status"))


def invoice_finalize(ctx: Context, record_id: str) -> Answer:
    """POST invoices/<id>/finalize: draft → open, numbered; an invoice of zero is paid at once."""
    record = _load("invoice", record_id)
    if record.data["status"] != "draft":
        raise VendorError(
            400,
            "invoice_not_editable",
            f"This invoice is already finalized (status {record.data['status']}).",
        )
    count = sum(1 for r in SandboxRecord.objects.filter(kind=KIND, object_type="invoice") if r.data.get("number"))
    now = int(timezone.now().timestamp())
    data = {
        **record.data,
        "number": f"SBX-{count + 1:04d}",
        "status": "open",
        "status_transitions": {**record.data["status_transitions"], "finalized_at": now},
    }
    if data["amount_due"] == 0:
        data.update(status="paid", paid=True, status_transitions={**data["status_transitions"], "paid_at": now})
    records.update(record, data)
    ctx.emit_webhook("invoice.finalized", render(record))
    if data["status"] == "paid":
        ctx.emit_webhook("invoice.paid", render(record))
    return Answer(200, render(record))


def invoice_pay(ctx: Context, record_id: str) -> Answer:
    """POST invoices/<id>/pay: paid_out_of_band=true marks an open invoice paid with money received elsewhere."""
    record = _load("invoice", record_id)
    params = ctx.form()
    status = record.data["status"]
    if status == "paid":
        raise VendorError(400, "invoice_already_paid", "Invoice is already paid.")
    if status != "open":
        raise VendorError(400, "invoice_not_editable", f"You can only pay an open invoice; this one is {status}.")
    if params.get("paid_out_of_band") != "true":
        raise VendorError(
            402,
            "invoice_payment_intent_requires_action",
            "The customer has no default payment method; pay with paid_out_of_band=true for money received elsewhere.",
        )
    now = int(timezone.now().timestamp())
    data = {
        **record.data,
        "status": "paid",
        "paid": True,
        "paid_out_of_band": True,
        "amount_paid": record.data["amount_due"],
        "amount_remaining": 0,
        "status_transitions": {**record.data["status_transitions"], "paid_at": now},
    }
    records.update(record, data)
    ctx.emit_webhook("invoice.paid", render(record))
    return Answer(200, render(record))


customers_view = endpoint(KIND, GET=customer_list, POST=customer_create)
customer_view = endpoint(KIND, GET=customer_read, POST=customer_update)
customer_search_view = endpoint(KIND, GET=customer_search)
products_view = endpoint(KIND, POST=product_create)
product_view = endpoint(KIND, GET=product_read, POST=product_update)
invoiceitems_view = endpoint(KIND, GET=invoiceitem_list, POST=invoiceitem_create)
invoices_view = endpoint(KIND, GET=invoice_list, POST=invoice_create)
invoice_view = endpoint(KIND, GET=invoice_read)
invoice_finalize_view = endpoint(KIND, POST=invoice_finalize)
invoice_pay_view = endpoint(KIND, POST=invoice_pay)
anything_else = not_found(KIND)

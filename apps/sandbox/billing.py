"""The billing sandbox, shaped after Chargebee API v2: form-encoded writes, unbilled charges, invoices, webhooks."""

import datetime
import re
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from . import records
from .common import Answer, Context, VendorError, endpoint, not_found
from .models import SandboxRecord

KIND = "billing"
# The sandbox site's currencies with the flat tax rate it charges on each (sub_total × rate, per line).
TAX_RATES = {"USD": Decimal("0.08"), "GBP": Decimal("0.20"), "EUR": Decimal("0.19")}
PAYMENT_METHODS = {"cash", "check", "bank_transfer", "ach_credit", "sepa_credit", "card", "chargeback", "other"}
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.@~\-]{1,50}$")
NET_TERM_DAYS = 30
INVOICE_START = 1001


def param_error(param: str, message: str, code: str = "param_wrong_value") -> VendorError:
    return VendorError(400, code, f"{param} : {message}", param=param)


def _not_found(what: str, record_id: str) -> VendorError:
    return VendorError(404, "resource_not_found", f"Sorry, we couldn't find the {what} '{record_id}'.")


def _unix(moment) -> int:
    return int(moment.timestamp())


# --- parameters ------------------------------------------------------------------------------------------


def _text(params: dict, name: str, *, required: bool = False, max_length: int = 250, label: str | None = None):
    label = label or name
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise param_error(label, "cannot be blank")
        return None
    if not isinstance(value, str):
        raise param_error(label, "must be a single value")
    if len(value) > max_length:
        raise param_error(label, f"cannot be longer than {max_length} characters")
    return value


def _integer(params: dict, name: str, *, required: bool = False, minimum: int | None = None, label: str | None = None):
    label = label or name
    value = _text(params, name, required=required, label=label)
    if value is None:
        return None
    if not re.fullmatch(r"-?\d+", value):
        raise param_error(label, f"invalid integer value {value!r}")
    number = int(value)
    if minimum is not None and number < minimum:
        raise param_error(label, f"must be at least {minimum}")
    return number


def _timestamp(params: dict, name: str, *, required: bool = False, label: str | None = None) -> int | None:
    """Unix seconds, as Chargebee sends dates; a YYYY-MM-DD date is taken as midnight UTC."""
    label = label or name
    value = _text(params, name, required=required, label=label)
    if value is None:
        return None
    if re.fullmatch(r"\d+", value):
        return int(value)
    day = records.iso_date_or_none(value)
    if day is None:
        raise param_error(label, f"invalid timestamp {value!r}; send Unix seconds")
    return int(datetime.datetime.combine(day, datetime.time.min, datetime.UTC).timestamp())


def _currency(params: dict, name: str, *, required: bool = False) -> str | None:
    value = _text(params, name, required=required)
    if value is None:
        return None
    if value.upper() not in TAX_RATES:
        raise param_error(name, f"{value} is not enabled on this site; use one of {', '.join(TAX_RATES)}")
    return value.upper()


def _new_id(params: dict, object_type: str, what: str) -> str:
    record_id = _text(params, "id", max_length=50)
    if record_id is None:
        return records.random_id("", 16)
    if not ID_PATTERN.match(record_id):
        raise param_error("id", "may contain only letters, digits and _ - . @ ~")
    if records.find(KIND, object_type, record_id) is not None:
        raise VendorError(400, "duplicate_entry", f"The value {record_id} is already present.", param="id")
    return record_id


def _customer(params: dict, name: str = "customer_id") -> SandboxRecord:
    customer_id = _text(params, name, required=True, max_length=50)
    customer = records.find(KIND, "customer", customer_id)
    if customer is None:
        raise param_error(name, f"no customer with id {customer_id} exists")
    return customer


def _indexed(params: dict, name: str) -> list[dict]:
    """charges[amount][0], charges[description][0], ... → [{"amount": ..., "description": ...}, ...] by index."""
    group = params.get(name)
    if not isinstance(group, dict) or not group:
        raise param_error(f"{name}[amount][0]", "cannot be blank")
    rows: dict[int, dict] = {}
    for field, values in group.items():
        if not isinstance(values, dict):
            raise param_error(f"{name}[{field}]", f"must be indexed, e.g. {name}[{field}][0]")
        for index, value in values.items():
            if not index.isdigit():
                raise param_error(f"{name}[{field}][{index}]", "the index must be a number")
            rows.setdefault(int(index), {})[field] = value
    return [rows[index] for index in sorted(rows)]


# --- rendering -------------------------------------------------------------------------------------------


def render(record: SandboxRecord) -> dict:
    """A record as Chargebee shows it: its data plus id, object, timestamps and resource_version."""
    return {
        "id": record.internal_id,
        **record.data,
        "created_at": _unix(record.created_at),
        "updated_at": _unix(record.updated_at),
        "resource_version": int(record.updated_at.timestamp() * 1000),
        "deleted": False,
    }


def _load(object_type: str, record_id: str, what: str) -> SandboxRecord:
    record = records.find(KIND, object_type, record_id)
    if record is None:
        raise _not_found(what, record_id)
    return record


# --- customers -------------------------------------------------------------------------------------------

CUSTOMER_DEFAULTS = {
    "object": "customer",
    "auto_collection": "off",
    "net_term_days": NET_TERM_DAYS,
    "taxability": "taxable",
    "allow_direct_debit": False,
    "card_status": "no_card",
}


def _customer_fields(params: dict) -> dict:
    fields = {name: value for name, value in params.items() if name != "id"}
    _text(fields, "company")
    _text(fields, "email", max_length=70)
    if "preferred_currency_code" in fields:
        fields["preferred_currency_code"] = _currency(fields, "preferred_currency_code")
    return fields


def customer_create(ctx: Context) -> Answer:
    """POST customers → {"customer": {...}}; an id already present → 400 duplicate_entry."""
    params = ctx.form()
    record_id = _new_id(params, "customer", "customer")
    record = records.create(KIND, "customer", {**CUSTOMER_DEFAULTS, **_customer_fields(params)}, internal_id=record_id)
    return Answer(200, {"customer": render(record)})


def customer_read(ctx: Context, record_id: str) -> Answer:
    return Answer(200, {"customer": render(_load("customer", record_id, "customer"))})


def customer_update(ctx: Context, record_id: str) -> Answer:
    """POST customers/{id}: change the parameters sent."""
    record = _load("customer", record_id, "customer")
    records.update(record, {**record.data, **_customer_fields(ctx.form())})
    return Answer(200, {"customer": render(record)})


# --- billing schedules (a sandbox extension in Chargebee's style) ----------------------------------------


def _schedule_fields(params: dict, *, current: dict | None) -> dict:
    fields = {name: value for name, value in params.items() if name != "id"}
    required = current is None
    if required or "customer_id" in fields:
        fields["customer_id"] = _customer(fields).internal_id
    for name in ("project_ref", "frequency", "billing_method"):
        if required or name in fields:
            fields[name] = _text(fields, name, required=True)
    if required or "start_date" in fields:
        fields["start_date"] = _timestamp(fields, "start_date", required=True)
    if required or "currency_code" in fields:
        fields["currency_code"] = _currency(fields, "currency_code", required=True)
    revision = _integer(fields, "revision", minimum=1)
    if current is None:
        fields["revision"] = revision or 1
    elif revision is not None:
        if revision < current.get("revision", 1):
            raise param_error("revision", f"cannot go back from revision {current['revision']} to {revision}")
        fields["revision"] = revision
    return fields


def schedule_create(ctx: Context) -> Answer:
    """POST billing_schedules → {"billing_schedule": {...}}; an id already present → 400 duplicate_entry."""
    params = ctx.form()
    record_id = _new_id(params, "billing_schedule", "billing schedule")
    data = {"object": "billing_schedule", "status": "active", **_schedule_fields(params, current=None)}
    record = records.create(KIND, "billing_schedule", data, internal_id=record_id)
    return Answer(200, {"billing_schedule": render(record)})


def schedule_read(ctx: Context, record_id: str) -> Answer:
    return Answer(200, {"billing_schedule": render(_load("billing_schedule", record_id, "billing schedule"))})


def schedule_update(ctx: Context, record_id: str) -> Answer:
    """POST billing_schedules/{id}: a revised schedule (revision must not go down)."""
    record = _load("billing_schedule", record_id, "billing schedule")
    records.update(record, {**record.data, **_schedule_fields(ctx.form(), current=record.data)})
    return Answer(200, {"billing_schedule": render(record)})


# --- unbilled charges and invoices -----------------------------------------------------------------------


def charges_create(ctx: Context) -> Answer:
    """POST unbilled_charges: a batch of charges; one whose reference exists is returned as it is."""
    params = ctx.form()
    customer = _customer(params)
    currency = _currency(params, "currency_code", required=True)
    preferred = customer.data.get("preferred_currency_code")
    if preferred and preferred != currency:
        raise param_error("currency_code", f"must be the customer's currency {preferred}")
    parsed = []
    for index, charge in enumerate(_indexed(params, "charges")):

        def label(field, index=index):
            return f"charges[{field}][{index}]"

        amount = _integer(charge, "amount", required=True, minimum=1, label=label("amount"))
        description = _text(charge, "description", required=True, label=label("description"))
        date_from = _timestamp(charge, "date_from", required=True, label=label("date_from"))
        date_to = _timestamp(charge, "date_to", required=True, label=label("date_to"))
        if date_to < date_from:
            raise param_error(label("date_to"), "cannot be before date_from")
        reference = _text(charge, "reference", max_length=120, label=label("reference"))
        parsed.append((amount, description, date_from, date_to, reference))
    # One read for the references already held and one write for the new charges (a month-end batch is 100).
    held = records.find_external_many(KIND, "unbilled_charge", [charge[4] for charge in parsed])
    slots: list[SandboxRecord | int] = []
    new_rows: list[tuple[dict, str, str]] = []
    for amount, description, date_from, date_to, reference in parsed:
        if reference and reference in held:
            slots.append(held[reference])
            continue
        data = {
            "object": "unbilled_charge",
            "customer_id": customer.internal_id,
            "subscription_id": None,
            "date_from": date_from,
            "date_to": date_to,
            "unit_amount": amount,
            "quantity": 1,
            "amount": amount,
            "discount_amount": 0,
            "currency_code": currency,
            "description": description,
            "entity_type": "adhoc",
            "is_voided": False,
            "reference": reference,
            "invoice_id": None,
        }
        if reference:
            held[reference] = len(new_rows)  # a reference repeated in the batch answers the first charge
        slots.append(len(new_rows))
        new_rows.append((data, records.random_id("li_", 16), reference))
    created = records.create_many(KIND, "unbilled_charge", new_rows)
    answered = [created[slot] if isinstance(slot, int) else slot for slot in slots]
    return Answer(200, {"unbilled_charges": [render(record) for record in answered]})


def _line_item(charge: SandboxRecord, rate: Decimal) -> dict:
    amount = Decimal(charge.data["amount"])
    tax = (amount * rate).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
    return {
        "id": charge.internal_id,
        "object": "line_item",
        "customer_id": charge.data["customer_id"],
        "date_from": charge.data["date_from"],
        "date_to": charge.data["date_to"],
        "unit_amount": int(amount),
        "quantity": 1,
        "amount": int(amount),
        "pricing_model": "flat_fee",
        "is_taxed": rate > 0,
        "tax_amount": int(tax),
        "tax_rate": float(rate * 100),
        "discount_amount": 0,
        "item_level_discount_amount": 0,
        "description": charge.data["description"],
        "entity_type": "adhoc",
        "reference": charge.data.get("reference"),
    }


def charges_invoice(ctx: Context) -> Answer:
    """POST unbilled_charges/invoice_unbilled_charges: the customer's charges become one invoice per currency."""
    params = ctx.form()
    customer = _customer(params)
    charges = list(
        SandboxRecord.objects.filter(
            kind=KIND, object_type="unbilled_charge", data__customer_id=customer.internal_id, data__invoice_id=None
        ).order_by("id")
    )
    if not charges:
        raise VendorError(
            400, "invalid_request", f"There are no unbilled charges to invoice for customer {customer.internal_id}."
        )
    now = timezone.now()
    invoices = []
    for currency in sorted({charge.data["currency_code"] for charge in charges}):
        rate = TAX_RATES[currency]
        lines = [_line_item(charge, rate) for charge in charges if charge.data["currency_code"] == currency]
        sub_total = sum(line["amount"] for line in lines)
        tax = sum(line["tax_amount"] for line in lines)
        invoice_id = records.next_number(KIND, "invoice", start=INVOICE_START)
        data = {
            "object": "invoice",
            "customer_id": customer.internal_id,
            "recurring": False,
            "status": "posted",
            "price_type": "tax_exclusive",
            "date": _unix(now),
            "due_date": _unix(now + datetime.timedelta(days=NET_TERM_DAYS)),
            "net_term_days": NET_TERM_DAYS,
            "currency_code": currency,
            "exchange_rate": 1.0,
            "sub_total": sub_total,
            "tax": tax,
            "total": sub_total + tax,
            "amount_paid": 0,
            "amount_adjusted": 0,
            "write_off_amount": 0,
            "credits_applied": 0,
            "amount_due": sub_total + tax,
            "paid_at": None,
            "line_items": lines,
            "linked_payments": [],
        }
        invoice = records.create(KIND, "invoice", data, internal_id=invoice_id)
        for charge in charges:
            if charge.data["currency_code"] == currency:
                records.update(charge, {**charge.data, "invoice_id": invoice_id})
        invoices.append(render(invoice))
        ctx.emit_webhook("invoice_generated", {"invoice": invoices[-1]})
    return Answer(200, {"invoices": invoices})


def invoice_read(ctx: Context, record_id: str) -> Answer:
    return Answer(200, {"invoice": render(_load("invoice", record_id, "invoice"))})


def invoice_record_payment(ctx: Context, record_id: str) -> Answer:
    """POST invoices/{id}/record_payment: an offline payment; a fully paid invoice turns "paid"."""
    invoice = _load("invoice", record_id, "invoice")
    params = ctx.form().get("transaction")
    params = params if isinstance(params, dict) else {}
    if invoice.data["status"] == "paid":
        raise VendorError(400, "invalid_state_for_request", f"Invoice {record_id} is already paid.")
    due = invoice.data["amount_due"]
    amount = _integer(params, "amount", minimum=1, label="transaction[amount]")
    amount = due if amount is None else amount
    if amount > due:
        raise param_error("transaction[amount]", f"cannot be more than the amount due ({due})")
    method = _text(params, "payment_method", required=True, label="transaction[payment_method]")
    if method not in PAYMENT_METHODS:
        raise param_error("transaction[payment_method]", f"invalid value {method!r}")
    paid_on = _timestamp(params, "date", required=True, label="transaction[date]")
    transaction_id = records.random_id("txn_", 16)
    payment = {
        "object": "transaction",
        "customer_id": invoice.data["customer_id"],
        "type": "payment",
        "status": "success",
        "gateway": "not_applicable",
        "payment_method": method,
        "reference_number": _text(params, "reference_number", label="transaction[reference_number]"),
        "amount": amount,
        "currency_code": invoice.data["currency_code"],
        "exchange_rate": 1.0,
        "date": paid_on,
        "linked_invoices": [
            {
                "invoice_id": invoice.internal_id,
                "applied_amount": amount,
                "applied_at": _unix(timezone.now()),
                "invoice_date": invoice.data["date"],
                "invoice_total": invoice.data["total"],
            }
        ],
    }
    transaction = records.create(KIND, "transaction", payment, internal_id=transaction_id)
    amount_due = due - amount
    records.update(
        invoice,
        {
            **invoice.data,
            "amount_paid": invoice.data["amount_paid"] + amount,
            "amount_due": amount_due,
            "status": "paid" if amount_due == 0 else invoice.data["status"],
            "paid_at": paid_on if amount_due == 0 else None,
            "linked_payments": [
                *invoice.data["linked_payments"],
                {
                    "txn_id": transaction_id,
                    "applied_amount": amount,
                    "applied_at": _unix(timezone.now()),
                    "txn_status": "success",
                    "txn_date": paid_on,
                    "txn_amount": amount,
                },
            ],
        },
    )
    customer = records.find(KIND, "customer", invoice.data["customer_id"])
    body = {"invoice": render(invoice), "transaction": render(transaction)}
    ctx.emit_webhook("payment_succeeded", {**body, "customer": render(customer)})
    return Answer(200, body)


# --- lists -----------------------------------------------------------------------------------------------


def _listing(ctx: Context, object_type: str, key: str, filters: dict, **fixed) -> Answer:
    """Chargebee's list shape: {"list": [{key: {...}}], "next_offset": "..."} (offset is opaque to callers)."""
    raw_limit, raw_offset = ctx.request.GET.get("limit", "10"), ctx.request.GET.get("offset", "0")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
        raise param_error("limit", "must be a whole number from 1 to 100")
    if not raw_offset.isdigit():
        raise param_error("offset", "invalid value; pass the next_offset of the previous page")
    limit, offset = int(raw_limit), int(raw_offset)
    queryset = SandboxRecord.objects.filter(kind=KIND, object_type=object_type, **fixed)
    for param, field in filters.items():
        value = ctx.request.GET.get(f"{param}[is]")
        if value is not None:
            queryset = queryset.filter(**{field: value})
    page_records, total = records.page(queryset, offset=offset, limit=limit)
    body = {"list": [{key: render(record)} for record in page_records]}
    if offset + len(page_records) < total:
        body["next_offset"] = str(offset + limit)
    return Answer(200, body)


def invoice_list(ctx: Context) -> Answer:
    """GET invoices?limit=&offset=&customer_id[is]=&status[is]=, oldest first."""
    return _listing(ctx, "invoice", "invoice", {"customer_id": "data__customer_id", "status": "data__status"})


def customer_list(ctx: Context) -> Answer:
    """GET customers?limit=&offset=&id[is]=&email[is]=&company[is]= (Chargebee's string filters, exact)."""
    return _listing(
        ctx, "customer", "customer", {"id": "internal_id", "email": "data__email", "company": "data__company"}
    )


def schedule_list(ctx: Context) -> Answer:
    """GET billing_schedules?customer_id[is]=&status[is]=."""
    return _listing(
        ctx,
        "billing_schedule",
        "billing_schedule",
        {"customer_id": "data__customer_id", "status": "data__status"},
    )


def charge_list(ctx: Context) -> Answer:
    """GET unbilled_charges?customer_id[is]=: the charges not invoiced yet."""
    return _listing(
        ctx, "unbilled_charge", "unbilled_charge", {"customer_id": "data__customer_id"}, data__invoice_id=None
    )


customers_view = endpoint(KIND, GET=customer_list, POST=customer_create)
customer_view = endpoint(KIND, GET=customer_read, POST=customer_update)
schedules_view = endpoint(KIND, GET=schedule_list, POST=schedule_create)
schedule_view = endpoint(KIND, GET=schedule_read, POST=schedule_update)
charges_view = endpoint(KIND, GET=charge_list, POST=charges_create)
invoice_charges_view = endpoint(KIND, POST=charges_invoice)
invoices_view = endpoint(KIND, GET=invoice_list)
invoice_view = endpoint(KIND, GET=invoice_read)
record_payment_view = endpoint(KIND, POST=invoice_record_payment)
anything_else = not_found(KIND)

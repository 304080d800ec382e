"""Invoice to ERP and CRM, and payment to ERP receivables and CRM account status."""

from decimal import Decimal

from django.db.models import F, Sum
from django.utils import timezone

from apps.canonical.models import BillingEvent, Customer, Invoice, InvoiceLine, Payment
from apps.canonical.services import governed_upsert
from apps.connectors.interfaces import InvoiceLineSpec
from apps.core.errors import BusinessError
from apps.core.money import quantize
from apps.core.objects import BusinessObject
from apps.mapping.models import CrossReference
from apps.mapping.services import cross_reference_record, external_id_for, value_map_lookup
from apps.systems.models import SystemKind

from ..models import Workflow
from ..registry import StepSpec, Subject, WorkflowDefinition, register
from ..steps import Retryable, StepResult
from . import maps
from .common import by_xref, day, decimal, require, source_system

DEFAULT_SERVICE_ITEM = "professional-services"


def open_balance(customer: Customer) -> Decimal:
    """What the customer still owes on posted invoices."""
    open_invoices = Invoice.objects.filter(
        customer=customer, status__in=[Invoice.Status.POSTED, Invoice.Status.PARTIALLY_PAID]
    )
    return open_invoices.aggregate(balance=Sum(F("total") - F("amount_paid")))["balance"] or Decimal(0)


def crm_account_update(ctx, customer: Customer, fields: dict) -> StepResult:
    """Update the customer's CRM account, or skip when the customer never came from CRM."""
    crm = ctx.target
    account_id = external_id_for(system=crm, obj=customer)
    if not account_id:
        return StepResult(skipped=f"{customer} has no {crm.name} account to update.")
    ctx.connector().update_account(account_id, fields)
    return StepResult(output={"crm_account_updated": account_id})


@register
class InvoiceToErp(WorkflowDefinition):
    name = Workflow.INVOICE_TO_ERP
    owner_role = "finance_ops"

    def plan(self, data):
        return [
            StepSpec("record_invoice", "Check and record the invoice"),
            StepSpec("post_ar_erp", "Post the invoice to ERP receivables", target="erp"),
            StepSpec(
                "report_status_crm", "Report the open balance to CRM", target="crm", writes_back=BusinessObject.CUSTOMER
            ),
        ]

    def subject(self, data):
        invoice = data.get("data", {})
        return Subject(
            business_key=f"invoice:{invoice.get('invoice_external_id', '')}",
            label=f"Invoice {invoice.get('number') or invoice.get('invoice_external_id', '')}",
            object_type="invoice",
            value_at_risk=decimal(invoice.get("total"), field="total"),
            currency=invoice.get("currency") or "",
        )

    def step_record_invoice(self, ctx):
        source = source_system(ctx.transaction)
        data = ctx.input.get("data", {})
        require(data, "invoice_external_id", "customer_external_id", "currency", "total", what="invoice")
        customer = by_xref(source, "customer", data["customer_external_id"], what="customer account")
        number = str(data.get("number") or data["invoice_external_id"])[:40]
        issue_date = day(data.get("issue_date"), field="issue_date") or timezone.localdate()
        due_date = day(data.get("due_date"), field="due_date") or issue_date
        subtotal = decimal(data.get("subtotal"), field="subtotal")
        tax_total = decimal(data.get("tax_total"), field="tax_total") or Decimal(0)
        total = decimal(data.get("total"), field="total")
        if subtotal is None:
            subtotal = total - tax_total
        lines = data.get("lines") or []
        line_sum = sum((decimal(line.get("amount"), field="line amount") or Decimal(0) for line in lines), Decimal(0))
        if lines and quantize(line_sum, data["currency"]) != quantize(subtotal, data["currency"]):
            raise BusinessError(
                f"Invoice {number} lines add up to {line_sum} {data['currency']} but its subtotal is {subtotal}.",
                fix="Check the invoice in the billing platform; correct the source profile if it reads lines wrongly.",
            )
        if subtotal + tax_total != total:
            raise BusinessError(
                f"Invoice {number}: subtotal {subtotal} plus tax {tax_total} is not the total {total}.",
                fix="Check the invoice's tax in the billing platform, then re-run.",
            )
        existing = by_xref(source, "invoice", data["invoice_external_id"], required=False)
        existing = existing or Invoice.objects.filter(number=number).first()
        contract = customer.contracts.order_by("-start_date").first()
        project = contract.projects.first() if contract else None

        def apply():
            invoice, created, _ = governed_upsert(
                Invoice,
                system=source,
                instance=existing,
                on=issue_date,
                values={
                    "number": number,
                    "customer": customer,
                    "contract": contract,
                    "project": project,
                    "legal_entity": (contract.legal_entity if contract else customer.legal_entity),
                    "issue_date": issue_date,
                    "due_date": due_date,
                    "currency": data["currency"],
                    "subtotal": subtotal,
                    "tax_total": tax_total,
                    "total": total,
                    "status": existing.status if existing else Invoice.Status.DRAFT,
                },
            )
            cross_reference_record(
                system=source,
                obj=invoice,
                external_id=str(data["invoice_external_id"]),
                origin=CrossReference.Origin.INBOUND,
            )
            if created:
                self._lines(invoice, lines)
            return {
                "invoice_id": invoice.pk,
                "customer_id": customer.pk,
                "_transaction": {"subject": f"Invoice {invoice.number} for {customer.name}", "subject_id": invoice.pk},
            }

        return StepResult(apply=apply)

    def _lines(self, invoice: Invoice, lines: list[dict]) -> None:
        # Lines of charges we sent carry our billing event key ("BE-<id>"): link them, in one query.
        references = [str(line.get("reference") or "") for line in lines]
        events = BillingEvent.objects.in_bulk(
            [int(ref[3:]) for ref in references if ref.startswith("BE-") and ref[3:].isdigit()]
        )
        for number, (line, reference) in enumerate(zip(lines, references, strict=True), start=1):
            event = events.get(int(reference[3:])) if reference.startswith("BE-") and reference[3:].isdigit() else None
            row = InvoiceLine(
                invoice=invoice,
                line_number=number,
                description=(line.get("description") or "Services")[:300],
                service_item=(line.get("service_item") or "")[:80],
                quantity=decimal(line.get("quantity"), field="quantity") or Decimal(1),
                unit_price=decimal(line.get("unit_price"), field="unit price")
                or decimal(line.get("amount"), field="amount"),
                amount=decimal(line.get("amount"), field="amount"),
                tax_amount=decimal(line.get("tax_amount"), field="tax amount") or Decimal(0),
                billing_event=event,
            )
            row.full_clean()
            row.save()
            if event is not None and event.status != BillingEvent.Status.INVOICED:
                event.status = BillingEvent.Status.INVOICED
                event.invoice = invoice
                event.save()

    def step_post_ar_erp(self, ctx):
        erp = ctx.target
        source = source_system(ctx.transaction)
        invoice = Invoice.objects.select_related("customer").get(pk=ctx.state["invoice_id"])
        if source.kind == SystemKind.ERP:
            return StepResult(
                skipped=f"The invoice came from {source.name}; it is already in ERP.",
                apply=lambda: self._posted(invoice),
            )
        known = external_id_for(system=erp, obj=invoice)
        customer_erp_id = external_id_for(system=erp, obj=invoice.customer)
        if not customer_erp_id:
            raise BusinessError(
                f"Customer {invoice.customer} has no customer record in {erp.name}, so invoice {invoice.number} "
                f"cannot be posted to receivables.",
                fix="Re-run the customer's opportunity-to-project transaction (it creates the ERP customer).",
            )
        on = invoice.issue_date
        tax_code = value_map_lookup(maps.TAX_REGION_TAX_CODE, invoice.customer.tax_region or "", on=on)
        specs = [
            InvoiceLineSpec(
                description=line.description,
                item_id=value_map_lookup(maps.SERVICE_ITEM_ERP, line.service_item or DEFAULT_SERVICE_ITEM, on=on),
                quantity=line.quantity,
                amount=line.amount,
                tax_code_id=tax_code,
            )
            for line in invoice.lines.order_by("line_number")
        ]
        if not specs:
            specs = [
                InvoiceLineSpec(
                    description=f"Invoice {invoice.number}",
                    item_id=value_map_lookup(maps.SERVICE_ITEM_ERP, DEFAULT_SERVICE_ITEM, on=on),
                    quantity=Decimal(1),
                    amount=invoice.subtotal,
                    tax_code_id=tax_code,
                )
            ]
        record = ctx.connector().post_invoice(
            invoice=invoice, customer_erp_id=customer_erp_id, lines=specs, idempotency_key=ctx.idempotency_key
        )

        def apply():
            if not known:
                cross_reference_record(system=erp, obj=invoice, external_id=record.id)
            return self._posted(invoice) or {"erp_invoice_id": record.id}

        return StepResult(apply=apply)

    def _posted(self, invoice: Invoice):
        if invoice.status == Invoice.Status.DRAFT:
            invoice.status = Invoice.Status.POSTED
            invoice.posted_at = timezone.now()
            invoice.save()
        return {}

    def step_report_status_crm(self, ctx):
        invoice = Invoice.objects.select_related("customer").get(pk=ctx.state["invoice_id"])
        balance = open_balance(invoice.customer)
        return crm_account_update(ctx, invoice.customer, {"AR_Balance__c": str(balance)})


@register
class PaymentToCrm(WorkflowDefinition):
    name = Workflow.PAYMENT_TO_CRM
    owner_role = "finance_ops"

    def plan(self, data):
        return [
            StepSpec("record_payment", "Check and record the payment"),
            StepSpec("apply_erp", "Apply the payment in ERP receivables", target="erp"),
            StepSpec(
                "report_status_crm",
                "Report the account status to CRM",
                target="crm",
                writes_back=BusinessObject.CUSTOMER,
            ),
        ]

    def subject(self, data):
        payment = data.get("data", {})
        return Subject(
            business_key=f"payment:{payment.get('payment_external_id', '')}",
            label=f"Payment {payment.get('reference') or payment.get('payment_external_id', '')}",
            object_type="payment",
            value_at_risk=decimal(payment.get("amount"), field="amount"),
            currency=payment.get("currency") or "",
        )

    def step_record_payment(self, ctx):
        source = source_system(ctx.transaction)
        data = ctx.input.get("data", {})
        require(data, "payment_external_id", "customer_external_id", "amount", "currency", what="payment")
        customer = by_xref(source, "customer", data["customer_external_id"], what="customer account")
        invoice = None
        if data.get("invoice_external_id"):
            invoice = by_xref(source, "invoice", data["invoice_external_id"], required=False)
            if invoice is None:
                raise Retryable(
                    f"Payment {data.get('reference') or data['payment_external_id']} is for invoice "
                    f"{data['invoice_external_id']}, which the console has not recorded yet.",
                    fix="Usually the invoice's own transaction is still running; if this stays, re-run that first.",
                )
        amount = decimal(data["amount"], field="amount")
        if invoice is not None and invoice.currency != data["currency"]:
            raise BusinessError(
                f"Payment in {data['currency']} cannot settle invoice {invoice.number} in {invoice.currency}.",
                fix="Check the payment's currency in the billing platform.",
            )
        reference = str(data.get("reference") or data["payment_external_id"])[:80]
        if invoice is not None and amount > invoice.total - invoice.amount_paid:
            # A payment we recorded already (e.g. the ERP telling us of the one we applied there) is not extra money.
            existing = by_xref(source, "payment", data["payment_external_id"], required=False)
            if existing is None and not Payment.objects.filter(reference=reference, invoice=invoice).exists():
                raise BusinessError(
                    f"Payment of {amount} {data['currency']} is more than the {invoice.total - invoice.amount_paid} "
                    f"still open on invoice {invoice.number}.",
                    fix="Check for a duplicate payment or a credit note; apply the excess as unapplied cash in ERP.",
                )
        received_on = day(data.get("received_on"), field="received_on") or timezone.localdate()

        def apply():
            existing = by_xref(source, "payment", data["payment_external_id"], required=False)
            payment, created, _ = governed_upsert(
                Payment,
                system=source,
                instance=existing or Payment.objects.filter(reference=reference).first(),
                on=received_on,
                values={
                    "reference": reference,
                    "customer": customer,
                    "invoice": invoice,
                    "received_on": received_on,
                    "amount": amount,
                    "currency": data["currency"],
                    "method": (data.get("method") or "")[:40],
                    "status": Payment.Status.RECEIVED,
                },
            )
            cross_reference_record(
                system=source,
                obj=payment,
                external_id=str(data["payment_external_id"]),
                origin=CrossReference.Origin.INBOUND,
            )
            if created and invoice is not None:
                invoice.amount_paid += amount
                invoice.status = (
                    Invoice.Status.PAID if invoice.amount_paid >= invoice.total else Invoice.Status.PARTIALLY_PAID
                )
                invoice.save()
            return {
                "payment_id": payment.pk,
                "customer_id": customer.pk,
                "_transaction": {
                    "subject": f"Payment {payment.reference} from {customer.name}",
                    "subject_id": payment.pk,
                },
            }

        return StepResult(apply=apply)

    def step_apply_erp(self, ctx):
        erp = ctx.target
        payment = Payment.objects.select_related("customer", "invoice").get(pk=ctx.state["payment_id"])
        if external_id_for(system=erp, obj=payment):
            return StepResult(skipped=f"Payment {payment.reference} is already applied in {erp.name}.")
        customer_erp_id = external_id_for(system=erp, obj=payment.customer)
        invoice_erp_id = external_id_for(system=erp, obj=payment.invoice) if payment.invoice else None
        if payment.invoice is not None and not invoice_erp_id:
            raise Retryable(
                f"Invoice {payment.invoice.number} is not in {erp.name} receivables yet, so payment "
                f"{payment.reference} cannot be applied to it.",
                fix="The invoice's own transaction must post it first; re-run that one if it is an exception.",
            )
        if not customer_erp_id:
            raise BusinessError(
                f"Customer {payment.customer} has no {erp.name} customer record.",
                fix="Re-run the customer's opportunity-to-project transaction first.",
            )
        record = ctx.connector().apply_payment(
            payment=payment,
            customer_erp_id=customer_erp_id,
            invoice_erp_id=invoice_erp_id,
            idempotency_key=ctx.idempotency_key,
        )

        def apply():
            cross_reference_record(system=erp, obj=payment, external_id=record.id)
            payment.status = Payment.Status.APPLIED
            payment.save()
            return {"erp_payment_id": record.id}

        return StepResult(apply=apply)

    def step_report_status_crm(self, ctx):
        payment = Payment.objects.select_related("customer").get(pk=ctx.state["payment_id"])
        customer = payment.customer
        balance = open_balance(customer)
        overdue = Invoice.objects.filter(
            customer=customer,
            status__in=[Invoice.Status.POSTED, Invoice.Status.PARTIALLY_PAID],
            due_date__lt=timezone.localdate(),
        ).exists()
        return crm_account_update(
            ctx,
            customer,
            {
                "AR_Balance__c": str(balance),
                "Credit_Status__c": "Overdue" if overdue else "Current",
                "Last_Payment_Date__c": payment.received_on.isoformat(),
            },
        )

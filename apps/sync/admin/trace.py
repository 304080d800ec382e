"""The transaction's trace: its page in place of the change form (the admin never edits a transaction)."""

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import reverse

from .. import selectors
from ..filters import PROBLEM_STATUSES, role_label
from ..fixlinks import fix_links
from ..models import Step, Transaction
from ..presentation import api_url, badge, money, pretty, related_view, short_age, step_view
from ..routing import routing_for
from .forms import RerunForm, ResolveForm


class TraceMixin:
    """The change view of TransactionAdmin: steps, attempts, calls, related records, history and the actions."""

    # --- the trace ---------------------------------------------------------------------------
    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method not in ("GET", "HEAD"):
            if not self.has_change_permission(request):
                raise PermissionDenied
            return HttpResponseNotAllowed(["GET"], "Transactions are not edited here; use the actions on the page.")
        txn = selectors.transaction_trace(self._pk(object_id))
        if txn is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, txn):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            **self._trace_context(request, txn),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/sync/transaction/trace.html", context)

    def _pk(self, object_id):
        try:
            return int(unquote(object_id))
        except (TypeError, ValueError):
            raise Http404(f"There is no transaction with id {object_id}.") from None

    def _trace_context(self, request, txn: Transaction) -> dict:
        user = request.user
        steps = list(txn.steps.all())
        restart = next((s for s in steps if s.status not in (Step.Status.SUCCEEDED, Step.Status.SKIPPED)), None)
        can_act = self.has_change_permission(request, txn)
        return {
            "title": txn.subject or txn.correlation_id,
            "subtitle": f"{txn.get_workflow_display()} · {txn.correlation_id}",
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "original": txn,
            "txn": txn,
            "status_badge": badge(txn.status),
            "is_problem": txn.status in PROBLEM_STATUSES,
            "age": short_age(txn.exception_at) if txn.exception_at else "",
            "owner_role": role_label(txn.owner_role),
            "value_at_risk": money(txn.value_at_risk, txn.currency) if txn.value_at_risk is not None else "",
            "input": pretty(selectors.visible_json(txn.input, user)),
            "input_override": pretty(selectors.visible_json(txn.input_override, user)),
            "state": pretty(selectors.visible_json(txn.state, user)),
            "steps": [step_view(step, user, restart) for step in steps],
            "restart": restart,
            "related": related_view(txn, user),
            "history": selectors.transaction_history(txn, limit=20),
            "history_url": reverse("admin:sync_transaction_history", args=[txn.pk]),
            "api_url": api_url(txn),
            "can_act": can_act,
            "routing": routing_for(user, txn.owner_role),
            "fix_links": fix_links(
                self._failure_context(txn),
                subject_type=txn.subject_type,
                subject_id=txn.subject_id,
                transaction_id=txn.pk,
            )
            if txn.status in PROBLEM_STATUSES
            else [],
            "can_rerun": can_act and txn.status in PROBLEM_STATUSES,
            "can_close": can_act and txn.status not in Transaction.CLOSED_STATUSES,
            "owned_by_me": txn.owner_id == user.pk,
            "rerun_form": RerunForm(txn=txn),
            "resolve_form": ResolveForm(),
            "urls": self._action_urls(txn),
            "changelist_url": reverse("admin:sync_transaction_changelist"),
        }

    def _failure_context(self, txn: Transaction) -> dict:
        membership = getattr(txn, "exception_membership", None) if txn.status == Transaction.Status.EXCEPTION else None
        return membership.context if membership is not None else {}

    def _action_urls(self, txn) -> dict:
        return {
            name: reverse(f"admin:sync_transaction_{name}", args=[txn.pk])
            for name in ("rerun", "edit_input", "resolve", "assign")
        }

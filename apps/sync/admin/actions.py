"""What people do with transactions from the admin: re-run, edit and re-run, resolve, assign; one or many.

Each view parses the form and calls the service; the bulk actions ask for a reason on an intermediate page and
refuse more than BULK_ACTION_LIMIT transactions at a time (the same limit as the API's bulk re-run).
"""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from apps.core.admin import pending_message
from apps.core.errors import BusinessError
from apps.core.limits import BULK_ACTION_LIMIT
from apps.core.masking import can_see_sensitive
from apps.core.models import ChangeRequest

from .. import selectors
from ..filters import OWNER_ME
from ..models import Step, Transaction
from ..presentation import badge, input_diff, pretty
from ..services import transaction_assign, transaction_replay, transaction_resolve, transactions_replay
from .forms import EditInputForm, ReasonForm, RerunForm, ResolveForm

PAST = {"re-run": "re-run", "resolve": "resolved", "ignore": "ignored"}


class TransactionActionsMixin:
    """The action pages of one transaction (linked from its trace) and the bulk actions of the queue."""

    # --- actions on one transaction ----------------------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/rerun/", wrap(self.rerun_view), name="sync_transaction_rerun"),
            path("<path:object_id>/edit-input/", wrap(self.edit_input_view), name="sync_transaction_edit_input"),
            path("<path:object_id>/resolve/", wrap(self.resolve_view), name="sync_transaction_resolve"),
            path("<path:object_id>/assign/", wrap(self.assign_view), name="sync_transaction_assign"),
            *super().get_urls(),
        ]

    def _acting_on(self, request, object_id) -> Transaction:
        txn = selectors.transaction_detail().filter(pk=self._pk(object_id)).first()
        if txn is None:
            raise Http404(f"There is no transaction with id {object_id}.")
        if not self.has_change_permission(request, txn):
            raise PermissionDenied
        return txn

    def _trace_redirect(self, txn):
        return HttpResponseRedirect(reverse("admin:sync_transaction_change", args=[txn.pk]))

    def _action_page(self, request, txn, *, title: str, form, intro: str, button: str, **extra):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": txn.subject or txn.correlation_id,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "original": txn,
            "txn": txn,
            "status_badge": badge(txn.status),
            "form": form,
            "intro": intro,
            "button": button,
            "trace_url": reverse("admin:sync_transaction_change", args=[txn.pk]),
            **extra,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/sync/transaction/action_form.html", context)

    def rerun_view(self, request, object_id):
        txn = self._acting_on(request, object_id)
        form = RerunForm(request.POST or None, txn=txn)
        if request.method == "POST" and form.is_valid():
            try:
                transaction_replay(
                    txn=txn,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    from_sequence=form.cleaned_data["from_sequence"],
                )
            except BusinessError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, self._queued_message(txn), messages.SUCCESS)
                return self._trace_redirect(txn)
        return self._action_page(
            request,
            txn,
            title="Re-run as it is",
            form=form,
            intro="The failed step runs again with the same input and the same idempotency key, so a target "
            "that already did the work answers with its stored result instead of doing it twice.",
            button="Re-run",
        )

    def edit_input_view(self, request, object_id):
        txn = self._acting_on(request, object_id)
        steps = list(txn.steps.all())
        restart = next((s for s in steps if s.status not in (Step.Status.SUCCEEDED, Step.Status.SKIPPED)), None)
        step_has_own = restart is not None and restart.input_override is not None
        current = restart.input_override if step_has_own else txn.effective_input
        page = {
            "title": "Edit the input and re-run",
            "intro": "Correct the data below and re-run from the failed step. The original input stays as it "
            "was received; your edited copy is stored beside it, and the history records who edited it and why. "
            "Edited requests get new idempotency keys, so the target treats them as new.",
            "button": "Save the edit and re-run",
            "show_preview": True,
            "original_input": pretty(selectors.visible_json(txn.input, request.user)),
        }
        if not can_see_sensitive(request.user) and (
            selectors.holds_sensitive(txn.effective_input) or selectors.holds_sensitive(current)
        ):
            if request.method == "POST":
                raise PermissionDenied
            page["blocked"] = (
                "This input holds bill or cost rates, which your role may not see, so you cannot edit it here. "
                "Ask finance ops or a mapping steward to edit it; you can still re-run it as it is."
            )
            return self._action_page(request, txn, form=None, **page)
        initial = {
            "scope": "step" if step_has_own else "transaction",
            "data": json.dumps(current, indent=2, ensure_ascii=False),
        }
        form = EditInputForm(request.POST or None, txn=txn, initial=initial)
        lines = (request.POST.get("data") or initial["data"]).count("\n") + 3
        form.fields["data"].widget.attrs["rows"] = min(max(lines, 8), 36)
        if request.method == "POST" and form.is_valid() and request.POST.get("preview"):
            # "Show what changes": the diff against what would run now; nothing is saved or re-run yet.
            edited = pretty(selectors.visible_json(form.cleaned_data["data"], request.user)).splitlines()
            before = pretty(selectors.visible_json(current, request.user)).splitlines()
            page["diff"] = input_diff(before, edited)
            page["intro"] = "Check what your edit changes, then save it; nothing has run yet."
            return self._action_page(request, txn, form=form, confirm=True, **page)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            whole = data["scope"] == "transaction"
            try:
                result = transaction_replay(
                    txn=txn,
                    actor=request.user,
                    reason=data["reason"],
                    from_sequence=data["from_sequence"],
                    input_override=data["data"] if whole else None,
                    step_input_override=None if whole else data["data"],
                )
            except BusinessError as exc:
                form.add_error(None, exc.message)
            else:
                if isinstance(result, ChangeRequest):
                    self.message_user(request, pending_message([f"{result.summary} (request #{result.pk})"]))
                    return self._trace_redirect(txn)
                self.message_user(request, f"Your edit was saved. {self._queued_message(txn)}", messages.SUCCESS)
                return self._trace_redirect(txn)
        return self._action_page(request, txn, form=form, **page)

    def resolve_view(self, request, object_id):
        txn = self._acting_on(request, object_id)
        form = ResolveForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            ignore = form.cleaned_data["outcome"] == "ignore"
            try:
                transaction_resolve(txn=txn, actor=request.user, reason=form.cleaned_data["reason"], ignore=ignore)
            except BusinessError as exc:
                form.add_error(None, exc.message)
            else:
                verb = "ignored" if ignore else "resolved"
                self.message_user(request, f"{txn.subject or txn.correlation_id} is {verb}.", messages.SUCCESS)
                return self._trace_redirect(txn)
        return self._action_page(
            request,
            txn,
            title="Close this exception",
            form=form,
            intro="Resolve it when the problem was fixed outside the console (for example, the invoice was "
            "posted by hand); ignore it when nothing needs to happen. Either way it leaves the queue and no "
            "step runs again.",
            button="Close",
        )

    def assign_view(self, request, object_id):
        txn = self._acting_on(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        take = request.POST.get("owner") == OWNER_ME
        transaction_assign(txn=txn, owner=request.user if take else None, actor=request.user)
        label = txn.subject or txn.correlation_id
        self.message_user(request, f"{label} is {'yours' if take else 'unassigned'} now.", messages.SUCCESS)
        return self._trace_redirect(txn)

    def _queued_message(self, txn) -> str:
        return (
            f"Re-run of {txn.subject or txn.correlation_id} is queued; its steps run in the background "
            "(reload this page to follow them)."
        )

    # --- bulk actions from the queue --------------------------------------------------------
    @admin.action(description="Re-run from the failed step…", permissions=["change"])
    def replay_selected(self, request, queryset):
        def act(selected, reason):
            report = transactions_replay(transactions=selected, actor=request.user, reason=reason)
            return report["replayed"], [(item["transaction"], item["reason"]) for item in report["refused"]]

        accepted, refused = selectors.replay_candidates(queryset)
        return self._bulk(
            request,
            queryset,
            act,
            title="Re-run the selected transactions",
            verb="re-run",
            done="Re-run queued for",
            accepted=accepted,
            refused=[(txn, "only exceptions and retrying transactions can be re-run") for txn in refused],
        )

    @admin.action(description="Resolve with a reason…", permissions=["change"])
    def resolve_selected(self, request, queryset):
        return self._bulk_close(request, queryset, ignore=False)

    @admin.action(description="Ignore with a reason…", permissions=["change"])
    def ignore_selected(self, request, queryset):
        return self._bulk_close(request, queryset, ignore=True)

    @admin.action(description="Assign to me", permissions=["change"])
    def assign_selected_to_me(self, request, queryset):
        count = 0
        for txn in queryset.order_by("pk"):
            if txn.owner_id != request.user.pk:
                transaction_assign(txn=txn, owner=request.user, actor=request.user)
                count += 1
        self.message_user(request, f"{count} transaction(s) assigned to you.", messages.SUCCESS)

    def _bulk_close(self, request, queryset, *, ignore: bool):
        def act(selected, reason):
            closed, refusals = 0, []
            for txn in selected:
                try:
                    transaction_resolve(txn=txn, actor=request.user, reason=reason, ignore=ignore)
                    closed += 1
                except BusinessError as exc:
                    refusals.append((txn.correlation_id, exc.message))
            return closed, refusals

        accepted, refused = [], []
        for txn in queryset.order_by("pk"):
            if txn.status in Transaction.CLOSED_STATUSES:
                refused.append((txn, f"it is already {txn.get_status_display().lower()}"))
            else:
                accepted.append(txn)
        verb = "ignore" if ignore else "resolve"
        return self._bulk(
            request,
            queryset,
            act,
            title=f"{verb.capitalize()} the selected transactions",
            verb=verb,
            done="Ignored" if ignore else "Resolved",
            accepted=accepted,
            refused=refused,
        )

    def _bulk(self, request, queryset, act, *, title, verb, done, accepted, refused):
        """An intermediate page that asks for the reason and says what will happen; then the action itself."""
        selected = len(accepted) + len(refused)
        if selected > BULK_ACTION_LIMIT:
            self.message_user(
                request,
                f"You selected {selected:,} transactions; act on at most {BULK_ACTION_LIMIT:,} at a time "
                "(narrow the filter).",
                messages.ERROR,
            )
            return None
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            done_count, refusals = act(accepted + [txn for txn, _ in refused], form.cleaned_data["reason"])
            if done_count:
                self.message_user(request, f"{done} {done_count} transaction(s).", messages.SUCCESS)
            if refusals:
                shown = "; ".join(f"{corr}: {why}" for corr, why in refusals[:10])
                more = f" (and {len(refusals) - 10} more)" if len(refusals) > 10 else ""
                self.message_user(
                    request,
                    f"{len(refusals)} transaction(s) could not be {PAST[verb]}: {shown}{more}",
                    messages.WARNING,
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "form": form,
            "verb": verb,
            "accepted": accepted,
            "refused": [{"txn": txn, "why": why, "badge": badge(txn.status)} for txn, why in refused],
            "selected_ids": [txn.pk for txn in accepted] + [txn.pk for txn, _ in refused],
            "action": request.POST.get("action", ""),
            "changelist_url": request.get_full_path(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/sync/transaction/bulk_confirm.html", context)

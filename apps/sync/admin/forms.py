"""The forms of the actions on a transaction: each one asks why."""

import json

from django import forms

from ..models import Transaction

REASON_REQUIRED = "Say why; auditors read it in the history with your name."


class ReasonForm(forms.Form):
    """Every action on a transaction says why."""

    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80, "placeholder": "e.g. Rate card fixed per FIN-231"}),
        help_text="Recorded in the history with your name.",
        error_messages={"required": REASON_REQUIRED},
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(REASON_REQUIRED)
        return reason


def step_choices(txn: Transaction) -> list[tuple[str, str]]:
    return [
        (str(step.sequence), f"{step.sequence}. {step.title or step.name} ({step.get_status_display().lower()})")
        for step in txn.steps.all()
    ]


class RerunForm(ReasonForm):
    from_sequence = forms.TypedChoiceField(
        label="Re-run from", coerce=int, required=False, empty_value=None, choices=[("", "The failed step")]
    )

    def __init__(self, *args, txn: Transaction, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from_sequence"].choices = [("", "The failed step"), *step_choices(txn)]


class EditInputForm(RerunForm):
    SCOPES = [
        ("transaction", "The transaction's input (every step from the restart point reads it)"),
        ("step", "Only the input of the step it restarts from"),
    ]

    scope = forms.ChoiceField(label="What you are editing", choices=SCOPES, widget=forms.RadioSelect)
    data = forms.CharField(
        label="Input (JSON)",
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "class": "sync-json", "spellcheck": "false"}),
        help_text="The original input is kept unchanged; this edited copy is stored beside it.",
    )
    field_order = ["scope", "data", "from_sequence", "reason"]

    def clean_data(self):
        text = self.cleaned_data["data"]
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"This is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
                "Check for a missing comma or quote, or a trailing comma before a closing bracket."
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The input must be a JSON object: it starts with { and ends with }.")
        return value


class ResolveForm(ReasonForm):
    OUTCOMES = [("resolve", "Resolved: it was fixed elsewhere"), ("ignore", "Ignore: nothing needs to happen")]

    outcome = forms.ChoiceField(label="Close as", choices=OUTCOMES, widget=forms.RadioSelect, initial="resolve")
    field_order = ["outcome", "reason"]

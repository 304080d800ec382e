"""The ledger workflows the bench times: L1's two steps, each calling a local HTTP target, with every guarantee of a
real step (claim with a lease, attempt row, history, finish atomically, next step due); and M1's month-end step that
sends pending billing events to the billing platform (the same `post_charges` as time-to-bill)."""

import requests

from apps.sync.registry import StepSpec, WorkflowDefinition, register
from apps.sync.steps import Retryable, StepResult
from apps.sync.workflows.billing import post_charges

WORKFLOW = "bench_steps"


@register
class BenchSteps(WorkflowDefinition):
    name = WORKFLOW

    def plan(self, data):
        return [StepSpec("first", "First call"), StepSpec("second", "Second call")]

    def _call(self, ctx) -> StepResult:
        url = ctx.input["target"]
        try:
            response = requests.get(url, timeout=5)
        except requests.RequestException as exc:
            raise Retryable(str(exc)) from exc
        return StepResult(output={"status": response.status_code})

    def step_first(self, ctx):
        return self._call(ctx)

    def step_second(self, ctx):
        return self._call(ctx)


POST_CHARGES = "bench_post_charges"


@register
class BenchPostCharges(WorkflowDefinition):
    """M1: pending billing events sent to the billing platform by the real month-end step (`post_charges`)."""

    name = POST_CHARGES
    owner_role = "finance_ops"

    def plan(self, data):
        return [StepSpec("post_charges", "Send billable amounts to the billing platform", target="billing")]

    def step_post_charges(self, ctx):
        return post_charges(ctx, ctx.input["billing_event_ids"])

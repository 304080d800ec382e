"""The ledger workflow L1 times: two steps, each calling a local HTTP target, with every guarantee of a real step
(claim with a lease, attempt row, history, finish atomically, next step due)."""

import requests

from apps.sync.registry import StepSpec, WorkflowDefinition, register
from apps.sync.steps import Retryable, StepResult

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

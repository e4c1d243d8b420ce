"""The stages joined into one graph, and that graph rendered as Amazon States Language.

input -> new-data guard -> training -> outcome (with the registry before the success notice).
The construct (infra/workflow.py) renders the graph with CDK tokens left in its strings;
`build_definition` renders it for concrete settings, as AWS would run it (the tests feed it to
moto's ASL interpreter).
"""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from core.workflow_settings import WorkflowSettings
from infra.workflow_definition.input_stage import input_stage
from infra.workflow_definition.new_data_stage import new_data_stage
from infra.workflow_definition.outcome_stage import outcome_stage
from infra.workflow_definition.registry_stage import registry_stage
from infra.workflow_definition.training_stage import state_machine_timeout_s, training_stage

COMMENT = (
    "Multi-node PyTorch Lightning training on SageMaker: validate the input, merge it over "
    "the configured defaults, run CreateTrainingJob (.sync) with a fresh name per "
    "attempt, retry capacity failures with backoff, notify, and fail loudly."
)
_WHOLE_TOKEN = re.compile(r"\$\{Token\[[^\]]+\]\}")


def workflow_chain(scope: Construct, s: WorkflowSettings) -> sfn.IChainable:
    """Every state of the workflow, created in `scope`, starting at ValidateInput."""
    s.check()
    topic = sns.Topic.from_topic_arn(scope, "Topic", s.topic_arn)

    def registry(notify: sfn.IChainable) -> sfn.IChainable:
        return registry_stage(scope, s, next_state=notify)

    outcomes = outcome_stage(
        scope, s, topic, before_success=registry if s.model_package_group else None
    )
    training = training_stage(scope, s, outcomes)
    guarded = new_data_stage(scope, s, topic, next_state=training, done_state=outcomes.succeeded)
    return input_stage(scope, s).next(guarded)


def definition_json(scope: Construct, s: WorkflowSettings) -> dict[str, Any]:
    """The definition as a JSON-ready dict; CDK tokens (ARNs, names) stay in its strings."""
    graph = sfn.StateGraph(workflow_chain(scope, s).start_state, "training workflow")
    graph.timeout = cdk.Duration.seconds(state_machine_timeout_s(s))
    stack = cdk.Stack.of(scope)
    return {"Comment": COMMENT, **_with_nulls(graph.to_graph_json(), stack)}


def build_definition(s: WorkflowSettings) -> dict[str, Any]:
    """The definition for concrete settings, exactly as AWS runs it (a throwaway stack)."""
    stack = cdk.Stack(cdk.App(), "Definition", env=cdk.Environment(region=s.region))
    rendered = json.dumps(definition_json(stack, s))
    partition = RegionInfo.get(s.region).partition or "aws"
    # CDK's task states name their resource with the partition pseudo-parameter.
    rendered = rendered.replace(str(cdk.Aws.PARTITION), partition)
    if "${Token[" in rendered:
        raise ValueError("build_definition needs concrete settings; tokens render in a stack")
    return json.loads(rendered)


def _with_nulls(node: Any, stack: cdk.Stack) -> Any:
    """JSON null stands in the graph as a token (JsonPath.DISCARD): make it None for json.dumps.

    json.dumps then keeps `"ResultPath": null`, which CDK's own JSON rendering from Python
    (to_json_string) drops with every None it receives.
    """
    if isinstance(node, dict):
        return {k: _with_nulls(v, stack) for k, v in node.items()}
    if isinstance(node, list):
        return [_with_nulls(v, stack) for v in node]
    if isinstance(node, str) and _WHOLE_TOKEN.fullmatch(node) and stack.resolve(node) is None:
        return None
    return node

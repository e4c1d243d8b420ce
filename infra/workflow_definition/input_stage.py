"""Input stage: check the execution input, merge it over the configured defaults, plan the run.

ValidateInput (types, ranges, 'ml.*.*', 's3://*/*') -> ApplyDefaults -> MergeInput
(States.JsonMerge over the defaults) -> InspectInput -> CountInput -> CountHyperparameters ->
LiftHyperparameterCount -> CheckMergedInput (unknown keys, integer count, #hyperparameters,
SMDDP instance types) -> CheckHyperparameterValues (Map: every value IsString) -> PlanRun (run id
= States.Hash(execution ARN, MD5), checkpoint prefix, attempt 0). Every rule ends in its own
Fail state `Reject: <rule>` with the message `trainops start` prints for the same input.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from core import execution_input as ei
from core.config import CHECKPOINT_PREFIX
from core.workflow_settings import WorkflowSettings
from infra.workflow_definition.asl import ERROR_INVALID_INPUT, RUN_ID_EXPRESSION
from training import contract

C = sfn.Condition
#: (rule name, condition that means "bad", the Fail state's cause)
Rule = tuple[str, sfn.Condition, str]


def input_stage(scope: Construct, s: WorkflowSettings) -> sfn.Chain:
    """ValidateInput ... PlanRun; the chain's end is PlanRun."""
    check_values = _hyperparameter_values_check(scope)
    plan = _plan_run(scope, s)
    check_merged = _rejecting_choice(
        scope,
        "CheckMergedInput",
        "Rules that need the merged input: unknown keys, integer count, limits.",
        _merged_rules(s),
    ).otherwise(check_values.next(plan))
    validate = _rejecting_choice(
        scope,
        "ValidateInput",
        "Shape of the execution input; every rule ends in a Fail state.",
        _input_rules(),
    ).otherwise(_merge_and_count(scope, s).next(check_merged))
    return sfn.Chain.custom(validate, [plan], plan)


def _reject(scope: Construct, name: str, cause: str) -> sfn.Fail:
    return sfn.Fail(
        scope, f"Reject{name}", state_name=f"Reject: {name}", error=ERROR_INVALID_INPUT, cause=cause
    )


def _rejecting_choice(scope: Construct, name: str, comment: str, rules: list[Rule]) -> sfn.Choice:
    choice = sfn.Choice(scope, name, comment=comment)
    for rule, bad, cause in rules:
        choice.when(bad, _reject(scope, rule, cause))
    return choice


def _not_an_object(path: str) -> sfn.Condition:
    return C.or_(
        C.is_string(path),
        C.is_numeric(path),
        C.is_boolean(path),
        C.is_null(path),
        C.is_present(f"{path}[0]"),
    )


def _bad_if_present(path: str, *valid: sfn.Condition) -> sfn.Condition:
    """`path` is present and not valid (IsPresent first: And stops at the first false)."""
    return C.and_(C.is_present(path), C.not_(valid[0] if len(valid) == 1 else C.and_(*valid)))


def _condition(check: ei.InputCheck) -> sfn.Condition:
    """A key's rule from the schema (core/execution_input.py) as "present and bad"."""
    path = f"$.{check.key}"
    if check.kind == "object":
        return C.and_(C.is_present(path), _not_an_object(path))
    valid: list[sfn.Condition]
    if check.kind == "boolean":
        valid = [C.is_boolean(path)]
    elif check.kind == "range":
        valid = [
            C.is_numeric(path),
            C.number_greater_than_equals(path, check.low),
            C.number_less_than_equals(path, check.high),
        ]
    elif check.kind == "glob" and check.glob is not None:
        valid = [
            C.is_string(path),
            C.string_matches(path, check.glob.match),
            *(C.not_(C.string_matches(path, g)) for g in check.glob.exclude),
        ]
    else:
        valid = [C.is_string(path), C.or_(*(C.string_equals(path, c) for c in check.choices))]
    return _bad_if_present(path, *valid)


def _input_rules() -> list[Rule]:
    """NotAnObject, then one rule per key of the schema, in its order."""
    rules: list[Rule] = [("NotAnObject", _not_an_object("$"), ei.MSG_NOT_OBJECT)]
    return rules + [(c.name, _condition(c), c.cause) for c in ei.input_checks()]


def _merged_rules(s: WorkflowSettings) -> list[Rule]:
    rules: list[Rule] = [
        (
            "UnknownKey",
            C.number_greater_than("$.top_key_count", len(ei.INPUT_KEYS)),
            ei.MSG_UNKNOWN_KEY,
        ),
        (
            "FractionalInstanceCount",
            C.string_matches("$.count_text", "*.*"),
            ei.MSG_INSTANCE_COUNT,
        ),
        (
            "TooManyHyperparameters",
            C.number_greater_than("$.hp_count", ei.MAX_USER_HYPERPARAMETERS),
            ei.MSG_TOO_MANY_HYPERPARAMETERS,
        ),
    ]
    if s.backend == "smddp":
        smddp = C.or_(*(C.string_equals("$.run.instance_type", t) for t in ei.SMDDP_INSTANCE_TYPES))
        rules.append(("SmddpInstanceType", C.not_(smddp), ei.MSG_SMDDP_INSTANCE_TYPE))
    return rules


def _apply_defaults(scope: Construct, s: WorkflowSettings) -> sfn.Pass:
    return sfn.Pass(
        scope,
        "ApplyDefaults",
        parameters={
            "input.$": "$",
            "defaults": {
                "trigger": ei.DEFAULT_TRIGGER,
                "hyperparameters": {},
                "instance_type": s.instance_type,
                "instance_count": s.instance_count,
                "spot": bool(s.spot),
                "train_s3_uri": f"s3://{s.data_bucket_name}/{contract.TRAIN_CHANNEL}/",
            },
            "hp_defaults": s.default_hyperparameters,
            # Two keys keep `.*` a list in every engine (one match is unwrapped in moto).
            "hp_sentinel": {"__probe_a": "", "__probe_b": ""},
        },
    )


#: The Pass states between ApplyDefaults and the merged checks: (name, comment, parameters,
#: result path). They merge the input over the defaults and count what the checks compare.
_MERGE_STEPS: tuple[tuple[str, str | None, dict[str, Any], str | None], ...] = (
    (
        "MergeInput",
        "Top level: input keys override the defaults.",
        {
            "run.$": "States.JsonMerge($.defaults, $.input, false)",
            "hp_defaults.$": "$.hp_defaults",
            "hp_sentinel.$": "$.hp_sentinel",
        },
        None,
    ),
    (
        "InspectInput",
        "Hyperparameters: user keys override the defaults key by key.",
        {
            "run.$": "$.run",
            "hyperparameters.$": "States.JsonMerge($.hp_defaults, $.run.hyperparameters, false)",
            "top_values.$": "$.run.*",
            "hp_probe.$": "States.JsonMerge($.hp_sentinel, $.run.hyperparameters, false)",
            "count_text.$": "States.JsonToString($.run.instance_count)",
        },
        None,
    ),
    (
        "CountInput",
        None,
        {
            "run.$": "$.run",
            "hyperparameters.$": "$.hyperparameters",
            "count_text.$": "$.count_text",
            # Defaults hold every known key, so more keys than that means an unknown one.
            "top_key_count.$": "States.ArrayLength($.top_values)",
            "hp_values.$": "$.hp_probe.*",
            "hp_all_values.$": "$.hyperparameters.*",
        },
        "$",
    ),
    (
        "CountHyperparameters",
        None,
        {"count.$": "States.ArrayLength($.hp_all_values)"},
        "$.hp_count_result",
    ),
)


def _merge_and_count(scope: Construct, s: WorkflowSettings) -> sfn.Chain:
    """ApplyDefaults -> MergeInput -> ... -> LiftHyperparameterCount."""
    chain = sfn.Chain.start(_apply_defaults(scope, s))
    for name, comment, parameters, result_path in _MERGE_STEPS:
        chain = chain.next(
            sfn.Pass(scope, name, comment=comment, parameters=parameters, result_path=result_path)
        )
    return chain.next(
        sfn.Pass(
            scope,
            "LiftHyperparameterCount",
            input_path="$.hp_count_result.count",
            result_path="$.hp_count",
        )
    )


def _hyperparameter_values_check(scope: Construct) -> sfn.Map:
    check = sfn.Map(
        scope,
        "CheckHyperparameterValues",
        comment="Every hyperparameter value must be a string.",
        items_path="$.hp_values",
        max_concurrency=10,
        result_path=sfn.JsonPath.DISCARD,
    )
    check.item_processor(
        sfn.Choice(scope, "IsStringValue")
        .when(C.is_string("$"), sfn.Pass(scope, "StringValue"))
        .otherwise(
            sfn.Fail(
                scope,
                "NotAStringValue",
                error=ERROR_INVALID_INPUT,
                cause=ei.MSG_HYPERPARAMETER_VALUE,
            )
        )
    )
    return check


def _plan_run(scope: Construct, s: WorkflowSettings) -> sfn.Pass:
    run_keys = ("trigger", "instance_type", "instance_count", "spot", "train_s3_uri")
    return sfn.Pass(
        scope,
        "PlanRun",
        parameters={
            "run": {f"{key}.$": f"$.run.{key}" for key in run_keys},
            "hyperparameters.$": "$.hyperparameters",
            "run_id.$": RUN_ID_EXPRESSION,
            "checkpoint_s3_uri.$": (
                f"States.Format('s3://{s.artifacts_bucket_name}/{CHECKPOINT_PREFIX}{{}}/', "
                f"{RUN_ID_EXPRESSION})"
            ),
            "retry": {"attempt": 0, "wait_s": 0},
        },
    )

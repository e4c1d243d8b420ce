"""One schema for every setting: the stack configuration, the execution input and the runner's
hyperparameters, each bound, choice and default written once.

    limits           every limit and default (SageMaker's, the stack's)
    fields           the field types (integers, flags, choices, globs) with their rule in words
    errors           ConfigError; pydantic's errors as the one line a user reads
    stack            StackSettings: cdk.json's `training` block (core/config.py loads it)
    rules            stack and cluster rules a bound cannot say (botocore types, DLC matrix, cron)
    task_rules       what a job runs: hyperparameters, project, task config, channels, metrics
    hyperparameters  the hyperparameters' JSON schema, from the runner's table (training/contract)
    export           models as JSON Schema; `python -m core.schema` writes the committed file

The execution input's model is core/execution_input.py; the state machine's input checks are
generated from it (infra/workflow_definition/input_stage.py). No aws_cdk import.
"""

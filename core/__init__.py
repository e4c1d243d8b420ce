"""The CDK-free core: configuration rules, execution input, the job request, image facts, bundles.

The CDK app (`infra/`), the operator CLI (`trainops/`), the local executor (`localjob/`) and the
emulator (`localaws/`) all import these; nothing here imports aws_cdk, so the operator side starts
without loading the CDK's JavaScript runtime.
"""

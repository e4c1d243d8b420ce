"""Embedded local AWS: moto on 127.0.0.1, plus what the training workflow needs and moto lacks.

moto interprets the state machine; this package adds the SageMaker `.sync` integration, training
jobs that really run through the SageMaker toolkit, and deployment of the synthesized stack.
"""

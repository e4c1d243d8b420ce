"""Donut document parsing (the reference recipe's model): image -> JSON, fine-tuned with the runner.

A VisionEncoderDecoder (DonutSwin encoder + MBart decoder). With a `pretrained` channel it starts
from a `save_pretrained` folder (donut-base staged once); without one it builds a tiny random
model and renders synthetic receipts: the offline mode of tests, the demo and CI.
"""

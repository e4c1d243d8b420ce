"""Operator side: start, watch and stop training runs; run training and the workflow offline."""

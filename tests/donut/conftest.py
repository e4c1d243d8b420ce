"""Donut tests run offline: a tiny random model, synthetic receipts, no hub."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

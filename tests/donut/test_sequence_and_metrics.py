"""Donut's JSON <-> token sequence and its metrics (TED accuracy, field F1, edit distance)."""

from __future__ import annotations

import pytest

from training.tasks.donut import metrics
from training.tasks.donut.metrics import Node, tree_edit_distance
from training.tasks.donut.sequence import json_to_tokens, special_tokens, tokens_to_json

RECEIPT = {
    "menu": [{"nm": "tea", "price": "1.00"}, {"nm": "cake", "price": "2.50"}],
    "total": {"total_price": "3.50"},
}


def test_json_to_tokens_sorts_keys_and_separates_list_items():
    assert json_to_tokens(RECEIPT) == (
        "<s_menu><s_nm>tea</s_nm><s_price>1.00</s_price><sep/><s_nm>cake</s_nm>"
        "<s_price>2.50</s_price></s_menu><s_total><s_total_price>3.50</s_total_price></s_total>"
    )
    assert special_tokens(RECEIPT) == {
        f"<{slash}s_{key}>"
        for key in ("menu", "nm", "price", "total", "total_price")
        for slash in ("", "/")
    }


@pytest.mark.parametrize(
    "doc",
    [RECEIPT, {"a": "x"}, {"a": {"b": {"c": "deep"}}}, {"a": ["x", "y"]}, {"a": "x", "b": "y"}],
)
def test_round_trip(doc):
    assert tokens_to_json(json_to_tokens(doc)) == doc


def test_a_one_item_list_reads_back_as_the_item():
    """Donut's convention: the sequence has no marker for a list of one."""
    assert tokens_to_json(json_to_tokens({"menu": [{"nm": "tea"}]})) == {"menu": {"nm": "tea"}}


def test_model_mistakes_are_tolerated():
    assert tokens_to_json("<s_a>x</s_a><s_b>unclosed") == {"a": "x"}
    assert tokens_to_json("") == {}
    assert tokens_to_json("<s_a><s_a>in</s_a></s_a>") == {"a": {"a": "in"}}


def test_zhang_shasha_on_the_classic_example():
    """f(d(a c(b)) e) -> f(c(d(a b)) e) takes 2 edits (Zhang & Shasha 1989)."""
    left = Node("f", [Node("d", [Node("a"), Node("c", [Node("b")])]), Node("e")])
    right = Node("f", [Node("c", [Node("d", [Node("a"), Node("b")])]), Node("e")])
    assert tree_edit_distance(left, right) == 2
    assert tree_edit_distance(left, left) == 0


def test_ted_accuracy():
    assert metrics.ted_accuracy(RECEIPT, RECEIPT) == 1.0
    assert metrics.ted_accuracy({}, RECEIPT) == 0.0
    one_typo = {**RECEIPT, "total": {"total_price": "3.60"}}
    missing_line = {**RECEIPT, "menu": [RECEIPT["menu"][0]]}
    assert 0.9 < metrics.ted_accuracy(one_typo, RECEIPT) < 1.0
    assert metrics.ted_accuracy(missing_line, RECEIPT) < metrics.ted_accuracy(one_typo, RECEIPT)
    assert metrics.ted_accuracy(dict(reversed(list(RECEIPT.items()))), RECEIPT) == 1.0
    one_line = {"menu": [{"nm": "tea"}]}
    assert metrics.ted_accuracy(tokens_to_json(json_to_tokens(one_line)), one_line) == 1.0


def test_field_f1_and_edit_distance():
    assert metrics.field_f1([RECEIPT], [RECEIPT]) == 1.0
    assert metrics.field_f1([{}], [RECEIPT]) == 0.0
    half = {"menu": RECEIPT["menu"][:1], "total": RECEIPT["total"]}  # 3 of 5 fields, all right
    assert metrics.field_f1([half], [RECEIPT]) == pytest.approx(2 * 3 / (3 + 5))
    assert metrics.normalized_edit_distance("abcd", "abcd") == 0.0
    assert metrics.normalized_edit_distance("abcd", "abed") == 0.25
    assert metrics.normalized_edit_distance("", "") == 0.0

"""Donut's metrics: normalized edit distance, tree-edit-distance accuracy, field-level F1.

TED accuracy (the Donut paper): 1 - TED(pred, gt) / TED(empty, gt), floored at 0, where a JSON
document is a tree (a key is a node over its value; a list's items are siblings; a leaf's label
is its string) and TED is Zhang-Shasha's ordered tree edit distance with Donut's costs: adding
or removing a leaf costs its length, any other node 1; relabelling a leaf costs the character
edit distance, a key 0 or 1. Keys are sorted first, so key order never counts, and a one-item
list equals its item.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute: 1 each)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def normalized_edit_distance(pred: str, answer: str) -> float:
    """edit distance / the longer length (0 = identical, 1 = nothing in common)."""
    longest = max(len(pred), len(answer))
    return edit_distance(pred, answer) / longest if longest else 0.0


class Node:
    __slots__ = ("children", "label", "leaf")

    def __init__(self, label: str, children: list[Node] | None = None, leaf: bool = False):
        self.label, self.children, self.leaf = label, children or [], leaf


def normalize(obj: Any) -> Any:
    """A one-item list is its item (the token sequence cannot tell them apart); keys sorted."""
    if isinstance(obj, dict):
        return {key: normalize(obj[key]) for key in sorted(obj)}
    if isinstance(obj, list):
        return normalize(obj[0]) if len(obj) == 1 else [normalize(item) for item in obj]
    return obj


def to_tree(obj: Any, label: str = "<root>") -> Node:
    if isinstance(obj, dict):
        return Node(label, [to_tree(obj[key], str(key)) for key in sorted(obj)])
    if isinstance(obj, list):
        return Node(label, [to_tree(item, "<item>") for item in obj])
    return Node(label, [Node(str(obj), leaf=True)])


def _insert_or_remove(node: Node) -> int:
    return len(node.label) if node.leaf else 1


def _relabel(a: Node, b: Node) -> int:
    if a.leaf and b.leaf:
        return edit_distance(a.label, b.label)
    if a.leaf or b.leaf:
        return 1 + len((a if a.leaf else b).label)
    return int(a.label != b.label)


def _postorder(root: Node) -> tuple[list[Node], list[int]]:
    """Nodes in post-order and, for each, the index of its leftmost leaf descendant."""
    nodes: list[Node] = []
    leftmost: list[int] = []

    def walk(node: Node) -> int:
        first = None
        for child in node.children:
            left = walk(child)
            first = left if first is None else first
        nodes.append(node)
        leftmost.append(len(nodes) - 1 if first is None else first)
        return leftmost[-1]

    walk(root)
    return nodes, leftmost


def tree_edit_distance(a: Node, b: Node) -> int:
    """Zhang-Shasha ordered tree edit distance."""
    na, la = _postorder(a)
    nb, lb = _postorder(b)
    keys_a = [i for i in range(len(na)) if _keyroot(la, i)]
    keys_b = [j for j in range(len(nb)) if _keyroot(lb, j)]
    dist = [[0] * len(nb) for _ in range(len(na))]
    for i in keys_a:
        for j in keys_b:
            _forest(i, j, na, la, nb, lb, dist)
    return dist[-1][-1]


def _keyroot(leftmost: list[int], i: int) -> bool:
    """i is a keyroot: no later node shares its leftmost leaf."""
    return all(leftmost[k] != leftmost[i] for k in range(i + 1, len(leftmost)))


def _forest(i, j, na, la, nb, lb, dist) -> None:
    li, lj = la[i], lb[j]
    rows, cols = i - li + 2, j - lj + 2
    fd = [[0] * cols for _ in range(rows)]
    for x in range(1, rows):
        fd[x][0] = fd[x - 1][0] + _insert_or_remove(na[li + x - 1])
    for y in range(1, cols):
        fd[0][y] = fd[0][y - 1] + _insert_or_remove(nb[lj + y - 1])
    for x in range(1, rows):
        for y in range(1, cols):
            ai, bj = li + x - 1, lj + y - 1
            remove = fd[x - 1][y] + _insert_or_remove(na[ai])
            insert = fd[x][y - 1] + _insert_or_remove(nb[bj])
            if la[ai] == li and lb[bj] == lj:
                fd[x][y] = min(remove, insert, fd[x - 1][y - 1] + _relabel(na[ai], nb[bj]))
                dist[ai][bj] = fd[x][y]
            else:
                px, py = la[ai] - li, lb[bj] - lj
                fd[x][y] = min(remove, insert, fd[px][py] + dist[ai][bj])


def ted_accuracy(pred: Any, answer: Any) -> float:
    """1 - TED(pred, answer) / TED(empty, answer), at least 0."""
    gt, guess = to_tree(normalize(answer)), to_tree(normalize(pred))
    worst = tree_edit_distance(to_tree({}), gt)
    if worst == 0:
        return 1.0 if tree_edit_distance(guess, gt) == 0 else 0.0
    return max(0.0, 1.0 - tree_edit_distance(guess, gt) / worst)


def _fields(obj: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(obj, dict):
        return [f for key in sorted(obj) for f in _fields(obj[key], f"{path}.{key}")]
    if isinstance(obj, list):
        return [f for item in obj for f in _fields(item, path)]
    return [(path, str(obj))]


def field_counts(preds: list[Any], answers: list[Any]) -> tuple[int, int, int]:
    """(matching, predicted, expected) (key path, value) pairs: sums across ranks add up."""
    hits = total_pred = total_gt = 0
    for pred, answer in zip(preds, answers, strict=True):
        p, g = Counter(_fields(normalize(pred))), Counter(_fields(normalize(answer)))
        hits += sum((p & g).values())
        total_pred += sum(p.values())
        total_gt += sum(g.values())
    return hits, total_pred, total_gt


def f1_of(hits: float, predicted: float, expected: float) -> float:
    return 2 * hits / (predicted + expected) if predicted + expected else 1.0


def field_f1(preds: list[Any], answers: list[Any]) -> float:
    """Micro F1 over (key path, value) pairs of every document."""
    return f1_of(*field_counts(preds, answers))

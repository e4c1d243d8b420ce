"""JSON <-> Donut's token sequence: `<s_key>value</s_key>`, `<sep/>` between list items.

    {"menu": [{"nm": "tea"}, {"nm": "cake"}]}
    <s_menu><s_nm>tea</s_nm><sep/><s_nm>cake</s_nm></s_menu>

Keys are sorted, so one document has one sequence on every rank and in every run.
"""

from __future__ import annotations

import re
from typing import Any

SEP = "<sep/>"


def json_to_tokens(obj: Any) -> str:
    if isinstance(obj, dict):
        return "".join(f"<s_{key}>{json_to_tokens(obj[key])}</s_{key}>" for key in sorted(obj))
    if isinstance(obj, list):
        return SEP.join(json_to_tokens(item) for item in obj)
    return str(obj)


def special_tokens(obj: Any) -> set[str]:
    """Every `<s_key>` / `</s_key>` the document uses (added to the tokenizer)."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            out |= {f"<s_{key}>", f"</s_{key}>"} | special_tokens(value)
    elif isinstance(obj, list):
        for item in obj:
            out |= special_tokens(item)
    return out


_OPEN = re.compile(r"<s_(.+?)>")


def tokens_to_json(text: str) -> Any:
    """Inverse of json_to_tokens, tolerant of a model's mistakes (unclosed keys are dropped)."""
    items = _parse(text.strip())
    if not items:
        return {}
    return items[0] if len(items) == 1 else items


def _parse(text: str) -> list[Any]:
    """A `<sep/>`-separated list of dicts (or of leaves, when there is no key at all)."""
    if not _OPEN.search(text):
        return [leaf.strip() for leaf in text.split(SEP)] if text else []
    items: list[Any] = []
    current: dict[str, Any] = {}
    rest = text
    while rest:
        rest = rest.strip()
        if rest.startswith(SEP):
            items.append(current)
            current, rest = {}, rest[len(SEP) :]
            continue
        match = _OPEN.match(rest) or _OPEN.search(rest)
        if match is None:
            break
        key = match.group(1)
        close = f"</s_{key}>"
        end = _matching_close(rest, match.end(), key)
        if end < 0:
            rest = rest[match.end() :]
            continue
        inner = rest[match.end() : end]
        value = _parse(inner)
        current[key] = value[0] if len(value) == 1 else value
        rest = rest[end + len(close) :]
    if current or not items:
        items.append(current)
    return [item for item in items if item != {}] or items


def _matching_close(text: str, start: int, key: str) -> int:
    """Index of the `</s_key>` closing the one opened before `start` (same-name nesting counted)."""
    opening, closing = f"<s_{key}>", f"</s_{key}>"
    depth, i = 1, start
    while True:
        next_close = text.find(closing, i)
        if next_close < 0:
            return -1
        next_open = text.find(opening, i)
        if 0 <= next_open < next_close:
            depth, i = depth + 1, next_open + len(opening)
            continue
        depth -= 1
        if depth == 0:
            return next_close
        i = next_close + len(closing)

"""Octavia list semantics: field and tag filters, ``fields=``, ``limit``/``marker`` paging.

Filters compare against the rendered record plus per-kind ``extra`` keys (for relations the
body shows differently, e.g. a listener's ``loadbalancer_id``); unknown filter keys are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from simulator.core import ApiError, Record
from simulator.http import json_response

_PAGING_KEYS = {"limit", "marker", "fields", "sort", "sort_key", "sort_dir", "page_reverse"}
_TAG_KEYS = {"tags", "tags-any", "not-tags", "not-tags-any"}


def _matches_value(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return value == (wanted.lower() in ("true", "1", "yes"))
    if value is None:
        return wanted in ("", "None", "null")
    if isinstance(value, list):
        return wanted in [str(v.get("id") if isinstance(v, dict) else v) for v in value]
    return str(value) == wanted


def _matches_tags(have: set[str], key: str, wanted: set[str]) -> bool:
    if key == "tags":
        return wanted <= have
    if key == "tags-any":
        return bool(wanted & have)
    if key == "not-tags":
        return not wanted <= have
    return not wanted & have  # not-tags-any


def matches(query: Mapping[str, str], rendered: Record, extra: Record | None = None) -> bool:
    """Every field and tag filter of ``query`` holds; unknown filter keys are ignored."""
    fields = {**rendered, **(extra or {})}
    for key, wanted in query.items():
        if key in _PAGING_KEYS:
            continue
        if key in _TAG_KEYS:
            want = {t for t in wanted.split(",") if t}
            if not _matches_tags(set(rendered.get("tags", [])), key, want):
                return False
        elif key in fields and not _matches_value(fields[key], wanted):
            return False
    return True


def list_response(
    request: web.Request,
    collection: str,
    records: list[Record],
    render: Callable[[Record], Record],
    extra: Callable[[Record], Record] | None = None,
) -> web.Response:
    """Octavia's list body ``{collection: [...], collection_links: [...]}`` with paging."""
    query = {k: request.query.getall(k)[-1] for k in request.query}
    chosen = []
    for record in records:
        rendered = render(record)
        if matches(query, rendered, extra(record) if extra else None):
            chosen.append(rendered)
    page, more = _page(chosen, request)
    links: list[Record] = []
    if more and page:
        next_query = {**query, "marker": page[-1]["id"]}
        links.append({"rel": "next", "href": str(request.url.with_query(next_query))})
    body = {collection: [select_fields(r, request) for r in page], f"{collection}_links": links}
    return json_response(body)


def select_fields(body: Record, request: web.Request) -> Record:
    """Apply ``fields=a&fields=b`` / ``fields=a,b``."""
    fields = [f for value in request.query.getall("fields", []) for f in value.split(",") if f]
    return {k: v for k, v in body.items() if k in fields} if fields else body


def _page(records: list[Record], request: web.Request) -> tuple[list[Record], bool]:
    marker = request.query.get("marker")
    if marker:
        ids = [r["id"] for r in records]
        if marker not in ids:
            raise ApiError(400, f"Supplied pagination marker '{marker}' is not valid.")
        records = records[ids.index(marker) + 1 :]
    limit_text = request.query.get("limit")
    if not limit_text:
        return records, False
    try:
        limit = int(limit_text)
    except ValueError as exc:
        raise ApiError(400, f"Supplied pagination limit '{limit_text}' is not valid.") from exc
    if limit <= 0:
        return records, False
    return records[:limit], len(records) > limit

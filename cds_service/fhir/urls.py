"""Which FHIR URLs may be called: the server allow-list, base + relative joins, next links,
and the page size every search asks for.

Every check parses with httpx's own URL parser (the one that sends), so checks and requests
agree. Nothing here does I/O: a refusal happens before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

from cds_service.fhir.errors import BAD_QUERY, NOT_ALLOWED, FHIRNotAllowed

__all__ = ["check_server", "join_url", "with_count"]


def _parse(url: str, resource_type: str) -> httpx.URL:
    if any(ch <= " " or ch in "\\\x7f" for ch in url):
        raise FHIRNotAllowed(resource_type, kind=NOT_ALLOWED)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise FHIRNotAllowed(resource_type, kind=NOT_ALLOWED) from None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.userinfo:
        raise FHIRNotAllowed(resource_type, kind=NOT_ALLOWED)
    return parsed


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def _has_dot_segment(path: str) -> bool:
    # httpx removes dot segments, so "Patient/../../admin" would leave the base path; decoded
    # first, so "p1%2F..%2Fadmin" (an id with slashes, encoded) counts too: servers that decode
    # %2F before routing would climb out of the base with it.
    return any(seg in (".", "..") for seg in unquote(path).split("/"))


def _path_under(path: str, prefix: str) -> bool:
    """``path`` equals ``prefix`` or lies below it on a segment boundary ("/fhir2" is not below
    "/fhir"); a trailing "/" of ``prefix`` is ignored."""
    want = prefix.rstrip("/")
    return path.rstrip("/") == want or path.startswith(want + "/")


def _is_under(target: httpx.URL, target_path: str, base: httpx.URL, base_path: str) -> bool:
    """Same scheme, host and port as ``base``, and a path under the base path, both as sent
    (``*_path``, percent-encoded) and decoded: "/fhir%2F..%2Fother" is refused on either reading
    a server may take."""
    return (
        _origin(target) == _origin(base)
        and _path_under(target_path, base_path)
        and _path_under(target.path, base.path)
        and not _has_dot_segment(target.path)
    )


def join_url(base: str, relative: str, *, resource_type: str = "Resource") -> str:
    """Append ``relative`` ("Patient/123", "Condition?patient=123") to ``base``.

    Strips one trailing "/" from ``base`` and keeps its path (urljoin would drop "/r4" from
    "https://h/r4"); CDS Hooks item 22. An absolute ``relative`` (a Bundle next link, a reference
    on the same server) is returned as is, and must lie under ``base``: the same scheme, host and
    port, and a path equal to the base path or below it on a segment boundary (a next link from
    "http://h/fhir" may not lead to "http://h/other-tenant/..." or "http://h/fhir2/..."). Raises
    FHIRNotAllowed otherwise, or when ``relative`` has "." or ".." path segments.
    """
    base_url = _parse(base, resource_type)
    split = urlsplit(relative)
    if split.scheme or relative.startswith("//"):
        target = _parse(relative, resource_type)
        if _has_dot_segment(split.path) or not _is_under(
            target, split.path, base_url, urlsplit(base).path
        ):
            raise FHIRNotAllowed(resource_type, kind=NOT_ALLOWED)
        return relative
    if _has_dot_segment(split.path) or "\\" in relative or "#" in relative:
        raise FHIRNotAllowed(resource_type, kind=BAD_QUERY)
    root = base[:-1] if base.endswith("/") else base
    return f"{root}/{relative.lstrip('/')}"


def with_count(query: str, count: int) -> str:
    """``query`` ("Condition?patient=1") with ``_count=<count>`` added, unless it names a
    ``_count`` already (a template's own page size wins). Without it a server pages at its own
    default, often 20, and a page cap then cuts a long record short."""
    path, mark, params = query.partition("?")
    if any(name == "_count" for name, _ in parse_qsl(params, keep_blank_values=True)):
        return query
    if not mark:
        return f"{path}?_count={count}"
    separator = "" if params == "" or params.endswith("&") else "&"
    return f"{query}{separator}_count={count}"


def _prefix_matches(prefix: str, base: httpx.URL) -> bool:
    try:
        allowed = _parse(prefix, "Resource")
        explicit_port = urlsplit(prefix).port is not None
    except (FHIRNotAllowed, ValueError):
        return False  # a malformed allow-list entry allows nothing
    if (allowed.scheme, allowed.host) != (base.scheme, base.host):
        return False
    # A prefix written without a port allows any port on that host (loopback test servers and
    # the sandbox use arbitrary ports); a written port must match, default ports normalised.
    if explicit_port and _origin(allowed) != _origin(base):
        return False
    return _path_under(base.path, allowed.path)


def check_server(
    base: str, *, allowed_prefixes: Sequence[str], allow_insecure: bool, has_token: bool
) -> None:
    """Raise FHIRNotAllowed unless ``base`` may be queried; runs before any network I/O.

    ``base`` must be http(s) without user info, query or fragment, and match an allow-list prefix
    on URL boundaries: same scheme and host (so "http://127.0.0.1" does not allow
    "http://127.0.0.1.evil.com"), same port when the prefix names one, and a path equal to the
    prefix's path or below it ("/fhir" does not allow "/fhir-evil"). A token never goes to
    http:// unless ``allow_insecure`` (CDS Hooks item 23).
    """
    parsed = _parse(base, "Resource")
    split = urlsplit(base)
    if split.query or split.fragment or "?" in base or "#" in base or _has_dot_segment(split.path):
        raise FHIRNotAllowed("Resource", kind=NOT_ALLOWED)
    if has_token and parsed.scheme != "https" and not allow_insecure:
        raise FHIRNotAllowed("Resource", kind=NOT_ALLOWED)
    if not any(_prefix_matches(prefix, parsed) for prefix in allowed_prefixes):
        raise FHIRNotAllowed("Resource", kind=NOT_ALLOWED)

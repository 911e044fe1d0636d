"""Prefetch code filters generated from the value sets, once, when hooks/ is loaded.

A prefetch template in ``hooks/<service>/service.toml`` names value-set roles instead of
listing codes by hand::

    observations = "Observation?patient={{context.patientId}}&code={{valueset:bone_density,tb_tests}}"

:func:`expand_prefetch` replaces ``{{valueset:<role>,<role>...}}`` with the explicit codes of
those roles' value sets as FHIR token search values: ``system|code`` joined by commas (an OR,
https://hl7.org/fhir/R4/search.html#token), in a deterministic order: roles as written, each
value set's codes in its expansion order, each code once. The discovery document, and the
queries the service runs itself when a key is not prefetched, carry the expanded string; the
placeholder never leaves the service. It is not a CDS Hooks prefetch token: those (``{{context.
patientId}}`` ...) are filled per request and are left as they are.

Load-time rules (a break stops startup, like any content error):

* The placeholder is the whole value of a code parameter (``code``, ``*-code``, ``*.code``, with
  or without a modifier), and a code parameter is never written by hand: a code that should be
  fetched belongs in a value set, where the rules read it too.
* A role whose value set has ``is-a`` members (ICD-10-CM, ATC prefixes) cannot be listed: a
  hierarchy has no finite code list to send. Leave such a query broader instead (no code
  filter, or a category). A role with no explicit codes (text pattern only) is refused too.
* Codes of a code-filtered query are fetched, nothing else: data coded locally, which a value
  set's text pattern would match, only arrives when the client sends it or the query is broader.
* For each resource type, the code filters of its templates must cover every role in
  ``[selection]`` for that type that has explicit codes: otherwise resources the rules read
  would never be fetched.
* The expanded template is at most :data:`MAX_TEMPLATE_CHARS` characters. Servers and proxies
  commonly accept request lines of 8 KB (Apache ``LimitRequestLine`` 8190, nginx
  ``large_client_header_buffers`` 8k), some gateways far less; the EHR adds its base URL and
  the patient id, so the template stays well under that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from cds_service.errors import ContentError
from cds_service.valuesets import ValueSet

__all__ = ["MAX_TEMPLATE_CHARS", "VALUESET_TOKEN", "code_filter", "expand_prefetch"]

MAX_TEMPLATE_CHARS = 2000
VALUESET_TOKEN = re.compile(r"\{\{\s*valueset:([^}]*?)\s*\}\}")
# Characters a system or code may have to go into a token search value as it is: nothing the
# FHIR search syntax escapes (, | $ \) and nothing a URL would need percent-encoded.
_PLAIN = re.compile(r"[A-Za-z0-9._:/~-]+")


def expand_prefetch(
    templates: Mapping[str, str],
    valuesets: Mapping[str, ValueSet],
    selection: Mapping[str, Sequence[str]],
    where: str,
) -> dict[str, str]:
    """``templates`` (key -> template) with every ``{{valueset:...}}`` replaced by its codes.

    ``valuesets`` maps the service's roles to their value sets; ``selection`` is the service's
    resource type -> roles table. Raises ContentError on any rule of the module docstring.
    """
    expanded: dict[str, str] = {}
    filtered: dict[str, set[str]] = {}  # resource type -> roles its code filters list
    unfiltered: set[str] = set()  # resource types some search fetches without a code filter
    for key, template in templates.items():
        at = f"{where}.prefetch.{key}"
        rtype, roles = _filters(template, at)
        if roles:
            filtered.setdefault(rtype, set()).update(roles)
        elif "?" in template:
            unfiltered.add(rtype)

        def expand(match: re.Match[str], at: str = at) -> str:
            return code_filter(_roles(match.group(1), at), valuesets, at)

        text = VALUESET_TOKEN.sub(expand, template)
        if len(text) > MAX_TEMPLATE_CHARS:
            raise ContentError(f"{at}: longer than {MAX_TEMPLATE_CHARS} characters once expanded")
        expanded[key] = text
    for rtype in filtered.keys() - unfiltered:
        _check_coverage(rtype, filtered[rtype], valuesets, selection.get(rtype, ()), where)
    return expanded


def code_filter(roles: Sequence[str], valuesets: Mapping[str, ValueSet], where: str) -> str:
    """The explicit codes of ``roles`` as ``system|code,system|code...`` (see module docstring)."""
    tokens: dict[str, None] = {}  # ordered set
    for role in roles:
        valueset = valuesets.get(role)
        if valueset is None:
            raise ContentError(f"{where}: unknown value set role {role!r}")
        if valueset.prefixes:
            raise ContentError(
                f"{where}: role {role!r} has is-a members, which cannot be listed as codes; "
                "leave this query broader (no code filter)"
            )
        if not valueset.concepts:
            raise ContentError(f"{where}: role {role!r} has no explicit codes to list")
        for concept in valueset.concepts.values():
            if valueset.is_excluded(concept.system, concept.code):
                continue  # never matches, so never worth fetching
            if not (_PLAIN.fullmatch(concept.system) and _PLAIN.fullmatch(concept.code)):
                raise ContentError(f"{where}: role {role!r} has a code that needs escaping")
            tokens[f"{concept.system}|{concept.code}"] = None
    return ",".join(tokens)


def _roles(text: str, where: str) -> tuple[str, ...]:
    roles = tuple(r.strip() for r in text.split(","))
    if not roles or not all(roles):
        raise ContentError(f"{where}: write {{{{valueset:<role>,<role>}}}} with role names")
    return roles


def _is_code_parameter(name: str) -> bool:
    base = name.split(":", 1)[0]  # without a modifier such as :not
    return base == "code" or base.endswith(("-code", ".code"))


def _filters(template: str, where: str) -> tuple[str, set[str]]:
    """The template's resource type and the roles of its placeholders; refuses hand-written
    codes and placeholders outside a code parameter."""
    path, _, query = template.partition("?")
    if VALUESET_TOKEN.search(path):
        raise ContentError(f"{where}: {{{{valueset:...}}}} belongs in a code parameter")
    roles: set[str] = set()
    for parameter in query.split("&") if query else ():
        name, _, value = parameter.partition("=")
        token = VALUESET_TOKEN.fullmatch(value)
        if _is_code_parameter(name) and token is None:
            raise ContentError(
                f"{where}: codes are not listed by hand; write {name}={{{{valueset:<role>}}}}"
            )
        if token is None and VALUESET_TOKEN.search(value):
            raise ContentError(f"{where}: {{{{valueset:...}}}} is the whole parameter value")
        if token is not None:
            if not _is_code_parameter(name):
                raise ContentError(f"{where}: {{{{valueset:...}}}} belongs in a code parameter")
            roles.update(_roles(token.group(1), where))
    return path.strip("/"), roles


def _check_coverage(
    rtype: str,
    listed: set[str],
    valuesets: Mapping[str, ValueSet],
    selected: Sequence[str],
    where: str,
) -> None:
    """Every coded role ``[selection]`` reads for ``rtype`` is in its code filters (``listed``)."""
    for role in selected:
        valueset = valuesets.get(role)
        if valueset is not None and valueset.concepts and role not in listed:
            raise ContentError(
                f"{where}: [selection] reads role {role!r} for {rtype}, but no {rtype} "
                "prefetch code filter lists it"
            )

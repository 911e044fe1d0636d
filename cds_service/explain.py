"""The story of one hook call in words: what the service read, what it computed, and which
rules spoke or stayed silent (``cds-service explain``; the preview page will show the same).

It runs the pure decide step once and reads the facts and status the rules judged from, so
the explanation cannot drift from the cards. No patient identifiers beyond what the caller sent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cds_service.card_text import fmt_number
from cds_service.catalog import RuleDef
from cds_service.decide import DecideOptions, decide_showing_facts
from cds_service.exposure import ExposureSummary
from cds_service.gather import GatherOptions, gather
from cds_service.hook_call import HookCall
from cds_service.rule_kind import Finding
from cds_service.steroid_status import dose_lines, dose_unknown_note


@dataclass
class Explanation:
    hook: str
    service: str
    courses: list[dict[str, Any]] = field(default_factory=list)
    exposure: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, list[str]] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)
    missing_data: list[str] = field(default_factory=list)
    snoozed_topics: list[str] = field(default_factory=list)


async def explain(
    call: HookCall, gather_options: GatherOptions, options: DecideOptions
) -> Explanation:
    return (await explain_with_exposure(call, gather_options, options))[0]


async def explain_with_exposure(
    call: HookCall, gather_options: GatherOptions, options: DecideOptions
) -> tuple[Explanation, ExposureSummary]:
    """The explanation and the exposure summary it was read from (the preview's chart)."""
    gathered = await gather(call, gather_options)
    evaluation, facts, status = decide_showing_facts(call, gathered, options)
    exp = facts.exposure
    out = Explanation(hook=call.request.hook, service=call.service.id)
    for c in sorted(exp.courses, key=lambda c: (c.start, c.source)):
        out.courses.append(
            {
                "drug": c.ingredient_name,
                "source": c.source,
                "start": c.start.isoformat(),
                "end": c.end.isoformat(),
                "route": c.route,
                "planned": c.planned,
                "daily_peq_mg": c.daily_peq_mg,
                "dose": "unknown: " + dose_unknown_note(c)
                if c.daily_peq_mg is None
                else f"{fmt_number(c.daily_peq_mg)} mg/day prednisone-equivalent ({c.dose_source})",
            }
        )
    lines_mg = [line["mg"] for line in dose_lines(call.service.thresholds)]
    out.exposure = {
        "current_mg": exp.current_daily_peq_mg(),
        "max_mg": exp.max_daily_peq_mg(),
        "cumulative_mg": exp.cumulative_peq_mg(),
        "days_at_or_above": {fmt_number(mg): exp.days_at_or_above(mg) for mg in lines_mg},
        "longest_run_at_or_above": {
            fmt_number(mg): exp.longest_run_at_or_above(mg) for mg in lines_mg
        },
        "iv_pulse_days": len(exp.iv_pulse_days()),
        "long_term": status.long_term,
        "replacement": status.replacement,
    }
    out.facts = {role: sorted({h.ref for h in hits}) for role, hits in sorted(facts.hits.items())}
    shown = {r.rule.definition.id: r for r in evaluation.rendered}
    for rule in call.service.rules:
        definition = rule.definition
        if call.request.hook not in definition.hooks:
            continue
        entry: dict[str, Any] = {"rule": definition.id, "topic": definition.topic}
        if evaluation.patient_deceased:
            entry["outcome"] = "not run: the record says the patient has died"
        elif definition.id in evaluation.failed_rules:
            entry["outcome"] = "failed (see the service log)"
        elif definition.id in shown:
            rendered = shown[definition.id]
            card = rendered.card
            entry |= {"outcome": "card", "indicator": card["indicator"], "summary": card["summary"]}
            entry |= {
                "why": why(rendered.finding, definition),
                "suggestions": [s["label"] for s in card.get("suggestions", ())],
            }
        elif definition.topic in evaluation.silenced_topics:
            entry["outcome"] = "found something, but the topic is snoozed for this patient"
        elif definition.topic in evaluation.repeated_topics:
            entry["outcome"] = "found something, shown for the same order moments ago"
        elif definition.fallback:
            entry["outcome"] = "silent: another rule spoke, or no current course below every line"
        else:
            entry["outcome"] = "silent: nothing due by its thresholds (or done already)"
        out.rules.append(entry)
    out.missing_data = sorted(set(gathered.prefetch.missing) | set(gathered.prefetch.incomplete))
    out.snoozed_topics = sorted(evaluation.silenced_topics)
    return out, exp


def why(finding: Finding, definition: RuleDef) -> list[str]:
    """The card's reasoning in full: each fragment's explanation (its card text when it has
    none), with the finding's values, the course list and dose derivations included. This is
    everything the short card leaves out."""
    return [
        text.format_map(finding.facts).strip()
        for d in finding.details
        if (text := definition.explanations.get(d) or definition.details[d])
    ]


def render_text(e: Explanation) -> str:
    lines = [f"{e.service} / {e.hook}", "", "Glucocorticoid courses (prednisone-equivalent):"]
    for c in e.courses or [{"drug": "none on record"}]:
        if "source" not in c:
            lines.append(f"  - {c['drug']}")
            continue
        planned = ", planned" if c["planned"] else ""
        lines.append(
            f"  - {c['drug']} {c['start']} to {c['end']} ({c['route']}{planned}): {c['dose']} "
            f"[{c['source']}]"
        )
    x = e.exposure
    lines += [
        "",
        "Exposure over the lookback:",
        f"  current {fmt_number(x['current_mg'])} mg/day, highest {fmt_number(x['max_mg'])} "
        f"mg/day, cumulative {fmt_number(round(x['cumulative_mg']))} mg, IV pulse days "
        f"{x['iv_pulse_days']}; long-term: {'yes' if x['long_term'] else 'no'}"
        + ("; physiological replacement" if x["replacement"] else ""),
    ]
    for mg, days in x["days_at_or_above"].items():
        run = x["longest_run_at_or_above"][mg]
        lines.append(f"  >= {mg} mg/day: {days} days in all, longest run {run} days")
    lines += ["", "Facts found (value-set role: resources):"]
    lines += [f"  {role}: {', '.join(refs)}" for role, refs in e.facts.items()] or ["  none"]
    lines += ["", "Rules:"]
    for r in e.rules:
        said = f" [{r['indicator']}] {r['summary']}" if r.get("summary") else ""
        lines.append(f"  {r['rule']} ({r['topic']}): {r['outcome']}{said}")
        for paragraph in r.get("why", ()):
            lines += [f"      {line}" if line else "" for line in paragraph.splitlines()]
            lines.append("")
        if r.get("suggestions"):
            lines.append("      Buttons: " + "; ".join(r["suggestions"]))
    if e.missing_data:
        lines += ["", "Not read in full: " + ", ".join(e.missing_data)]
    if e.snoozed_topics:
        lines += ["", "Snoozed: " + ", ".join(e.snoozed_topics)]
    return "\n".join(lines)


def render_json(e: Explanation) -> dict[str, Any]:
    return asdict(e)

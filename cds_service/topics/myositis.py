"""myositis-monitoring: follow-up of an inflammatory myopathy (not inclusion body myositis).

patient-view, whatever the glucocorticoid dose: lung function (ACR/CHEST 2023: PFTs every 3-6
months in the first year after ILD onset, less often once stable; baseline PFTs and HRCT when
no ILD is on record), muscle enzymes (CK and aldolase; no guideline interval, a design choice in
thresholds) and cancer screening (IMACS 2023: adults within 3 years of myositis onset, basic or
enhanced panel by the risk features on record; not for juvenile-onset disease). One card with
the items that are due; silent when none is. The shared glucocorticoid status only adds the
steroid-myopathy remark (weakness with a normal CK on a high dose).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.card_text import fmt_date, fmt_months, fmt_number
from cds_service.facts import ClinicalFacts, Hit
from cds_service.rule_kind import Finding, Indicator, RuleKind
from cds_service.steroid_status import SteroidStatus
from cds_service.thresholds import Thresholds
from cds_service.topics.patient_context import interstitial_lung_disease, pregnancy

ROLES = (
    "myositis",
    "ild",
    "ild_antibodies",
    "tif1_gamma_antibody",
    "pulmonary_function",
    "chest_ct",
    "muscle_enzymes",
    "cancer_screening",
    "dysphagia",
    "cutaneous_ulceration",
    "muscle_weakness",
    "pregnancy",
    "pregnancy_status",
)
# CT-based orders (HRCT chest, the enhanced panel's CT neck to pelvis): not offered in pregnancy
# (clinical-knowledge-2.md 2.6, 8.2); the card asks to agree imaging with obstetrics instead.
CT_SUGGESTIONS = frozenset({"hrct", "cancer-screening-enhanced"})
# ... and the paragraphs that would ask for them take their pregnancy wording (clinical review 2, 1)
PREGNANCY_WORDING = {"lung-screen": "lung-screen-pregnancy", "cancer-enhanced": "cancer-pregnancy"}
THRESHOLDS = (
    "myositis.pft_interval_days",
    "myositis.pft_first_year_days",
    "myositis.pft_stable_interval_days",
    "myositis.enzyme_interval_days",
    "myositis.enzyme_change_fraction",
    "myositis.ck_upper_normal",
    "myositis.cancer_window_years",
    "myositis.cancer_min_age",
    "myositis.ild_guideline_min_age",
    "myositis.cancer_enhanced_age",
    "exposure.high_dose_min_daily_mg",
    "pregnancy.max_days",
)
SUBTYPE_WORDS = {
    "dm": "dermatomyositis",
    "jdm": "juvenile dermatomyositis",
    "pm": "polymyositis",
    "dm-pm": "dermatopolymyositis",
    "antisynthetase": "antisynthetase syndrome",
    "imnm": "immune-mediated necrotising myopathy",
    "iim": "inflammatory myopathy",
}
DM_SUBTYPES = frozenset({"dm", "jdm", "dm-pm"})
YEAR_DAYS = 365.25
CK_LIMIT = "myositis.ck_upper_normal"


def positive(hit: Hit) -> bool:
    """A test result the record reads as positive (lab_results: coded answer, interpretation,
    text): an antibody that was only tested, or whose result is unclear, does not count."""
    return hit.result == "positive"


def _unit(hit: Hit) -> str | None:
    return hit.unit or None


def _value(hit: Hit | None) -> str:
    """'<value> <unit> (<date>)' for the card, or 'none on record'."""
    if hit is None:
        return "none on record"
    if hit.value is None:
        return f"on record ({fmt_date(hit.day)})"
    unit = _unit(hit)
    number = f"{round(hit.value, 2):g}"  # results keep their precision (FVC 2.85 L)
    shown = f"{number} {unit}" if unit else number
    return f"{shown} ({fmt_date(hit.day)})"


def _newest(hits: list[Hit]) -> Hit | None:
    dated = [h for h in hits if h.day is not None]
    return max(dated, key=lambda h: (h.day or date.min, h.ref)) if dated else None


def _earliest(hits: list[Hit]) -> date | None:
    days = [h.day for h in hits if h.day is not None]
    return min(days) if days else None


def _analyte(facts: ClinicalFacts, role: str, analyte: str) -> list[Hit]:
    return [h for h in facts.of(role) if h.properties.get("analyte") == analyte]


@dataclass(frozen=True)
class Lung:
    """What the record shows of the lungs: ILD (coded) or a high ILD risk, and the last PFT."""

    state: str  # "ild", "ild-risk" (ILD-associated antibody or antisynthetase), "none"
    refs: tuple[str, ...]
    onset: date | None
    last_pft: Hit | None
    last_fvc: Hit | None
    last_dlco: Hit | None
    hrct: Hit | None
    pft_refs: tuple[str, ...]

    @staticmethod
    def of(facts: ClinicalFacts) -> Lung:
        ild = interstitial_lung_disease(facts)
        antibodies = [h for h in facts.of("ild_antibodies") if positive(h)]
        antisynthetase = [
            h
            for h in facts.of("myositis", active_only=True)
            if h.properties.get("subtype") == "antisynthetase"
        ]
        if ild:
            state, refs = "ild", ild
            onset_hits = [h for h in facts.of("ild") + facts.of("myositis") if h.ref in ild]
        elif antibodies or antisynthetase:
            state, onset_hits = "ild-risk", antibodies + antisynthetase
            refs = tuple(sorted({h.ref for h in onset_hits}))
        else:
            state, refs, onset_hits = "none", (), []
        pfts = facts.of("pulmonary_function")
        return Lung(
            state=state,
            refs=refs,
            onset=_earliest(onset_hits),
            last_pft=_newest(pfts),
            last_fvc=_newest(_analyte(facts, "pulmonary_function", "fvc")),
            last_dlco=_newest(
                _analyte(facts, "pulmonary_function", "dlco")
                + _analyte(facts, "pulmonary_function", "dlco-hb-adjusted")
            ),
            hrct=_newest(facts.of("chest_ct")),
            pft_refs=tuple(sorted({h.ref for h in pfts})),
        )

    @property
    def evidence(self) -> tuple[str, ...]:
        return self.refs + self.pft_refs + ((self.hrct.ref,) if self.hrct else ())

    def interval(self, facts: ClinicalFacts, t: Thresholds) -> float:
        """First year after ILD onset (or an unknown onset): the 3-6-month interval; then the
        longer one once stable."""
        first_year = t.value("myositis.pft_first_year_days")
        if self.onset is None or (facts.today - self.onset).days <= first_year:
            return t.value("myositis.pft_interval_days")
        return t.value("myositis.pft_stable_interval_days")

    def advice(self, facts: ClinicalFacts, t: Thresholds) -> tuple[list[str], list[str]]:
        """(detail ids, suggestion ids) for the lungs."""
        last = self.last_pft.day if self.last_pft else None
        if self.state == "none":
            if facts.age is not None and facts.age < t.value("myositis.ild_guideline_min_age"):
                return [], []  # ACR/CHEST 2023 screening covers 17 and over only
            details: list[str] = []
            suggestions: list[str] = []
            if last is None:
                details.append("lung-screen")
                suggestions.append("pft")
            if self.hrct is None:
                # the lung-screen paragraph already asks for the HRCT
                details += [] if last is None else ["hrct-screen"]
                suggestions.append("hrct")
            return details, suggestions
        due = last is None or (facts.today - last).days > self.interval(facts, t)
        details = [f"lung-{self.state}"]
        suggestions = ["pft"] if due else []
        if due:
            details.append("pft-due" if last else "pft-none")
        if self.state == "ild-risk" and self.hrct is None:
            details.append("hrct-screen")
            suggestions.append("hrct")
        return details, suggestions

    def facts(self, facts: ClinicalFacts, t: Thresholds) -> dict[str, str]:
        first_year = self.onset is None or (facts.today - self.onset).days <= t.value(
            "myositis.pft_first_year_days"
        )
        return {
            "ild_since": fmt_date(self.onset),
            "ild_phase": "first year after onset" if first_year else "past its first year",
            "pft_interval_months": fmt_months(self.interval(facts, t)),
            "pft_first_months": fmt_months(t.value("myositis.pft_interval_days")),
            "pft_stable_months": fmt_months(t.value("myositis.pft_stable_interval_days")),
            "last_pft": fmt_date(self.last_pft.day if self.last_pft else None),
            "last_fvc": _value(self.last_fvc),
            "last_dlco": _value(self.last_dlco),
        }


@dataclass(frozen=True)
class Enzymes:
    """The CK and aldolase results: the newest, the trend of the last two CKs."""

    last_ck: Hit | None
    previous_ck: Hit | None
    last_aldolase: Hit | None
    last_any: date | None
    refs: tuple[str, ...]

    @staticmethod
    def of(facts: ClinicalFacts) -> Enzymes:
        ck = sorted(
            (h for h in _analyte(facts, "muscle_enzymes", "ck") if h.day and h.value is not None),
            key=lambda h: (h.day or date.min, h.ref),
        )
        # CK or aldolase, or a result matched by its text only (no analyte property)
        counted = [
            h
            for h in facts.of("muscle_enzymes")
            if h.properties.get("analyte") in ("ck", "aldolase", None)
        ]
        newest = _newest(counted)
        return Enzymes(
            last_ck=ck[-1] if ck else _newest(_analyte(facts, "muscle_enzymes", "ck")),
            previous_ck=ck[-2] if len(ck) > 1 else None,
            last_aldolase=_newest(_analyte(facts, "muscle_enzymes", "aldolase")),
            last_any=newest.day if newest else None,
            refs=tuple(sorted({h.ref for h in counted})),
        )

    def due(self, facts: ClinicalFacts, t: Thresholds) -> bool:
        interval = t.value("myositis.enzyme_interval_days")
        return self.last_any is None or (facts.today - self.last_any).days > interval

    def trend(self, t: Thresholds) -> str:
        last, prev = self.last_ck, self.previous_ck
        if last is None or prev is None or last.value is None or prev.value is None:
            return "no earlier value to compare"
        if _unit(last) != _unit(prev):
            return "units differ: not compared"
        change = t.value("myositis.enzyme_change_fraction")
        since = f"from {fmt_number(round(prev.value, 2))} on {fmt_date(prev.day)}"
        if prev.value > 0 and last.value > prev.value * (1 + change):
            return f"rising {since}"
        if last.value < prev.value * (1 - change):
            return f"falling {since}"
        return f"stable {since}"

    def normal_ck(self, t: Thresholds) -> bool:
        last = self.last_ck
        # the threshold's UCUM unit: a result in another unit is not compared
        if last is None or last.value is None or _unit(last) not in (None, t[CK_LIMIT].unit):
            return False
        return last.value <= t.value(CK_LIMIT)


@dataclass(frozen=True)
class Cancer:
    """IMACS 2023 screening: who it applies to, whether one is on record, which panel."""

    onset: date | None
    juvenile: bool
    in_window: bool
    screened: tuple[str, ...]
    features: tuple[str, ...]  # risk features in words
    feature_refs: tuple[str, ...]

    @staticmethod
    def of(facts: ClinicalFacts, t: Thresholds, myositis: list[Hit]) -> Cancer:
        onset = _earliest(myositis)
        subtypes = {h.properties.get("subtype") for h in myositis}
        onset_age = _age_at(facts, onset)
        juvenile = "jdm" in subtypes or (
            onset_age is not None and onset_age < t.value("myositis.cancer_min_age")
        )
        window = t.value("myositis.cancer_window_years") * YEAR_DAYS
        in_window = onset is not None and (facts.today - onset).days <= window
        since = (onset - timedelta(days=window)) if onset else date.min
        screened = tuple(
            sorted({h.ref for h in facts.of("cancer_screening") if h.day and h.day >= since})
        )
        features: list[str] = []
        refs: list[str] = []
        dm = [h.ref for h in myositis if h.properties.get("subtype") in DM_SUBTYPES]
        if dm:
            features.append("dermatomyositis")
            refs += dm
        if onset_age is not None and onset_age > t.value("myositis.cancer_enhanced_age"):
            features.append(
                f"onset after age {fmt_number(t.value('myositis.cancer_enhanced_age'))}"
            )
        tif1 = [h.ref for h in facts.of("tif1_gamma_antibody") if positive(h)]
        for words, found in (
            ("anti-TIF1-gamma", tif1),
            ("dysphagia", list(facts.refs("dysphagia", active_only=True))),
            ("cutaneous ulceration", list(facts.refs("cutaneous_ulceration", active_only=True))),
        ):
            if found:
                features.append(words)
                refs += found
        return Cancer(onset, juvenile, in_window, screened, tuple(features), tuple(sorted(refs)))

    @property
    def due(self) -> bool:
        return self.in_window and not self.juvenile and not self.screened


def _age_at(facts: ClinicalFacts, day: date | None) -> float | None:
    """Age in years on ``day`` from today's age (whole years: good to a year)."""
    if facts.age is None or day is None:
        return None
    return facts.age - (facts.today - day).days / YEAR_DAYS


def _lead(lung: Lung, lung_suggestions: list[str], cancer: Cancer) -> str:
    """The most consequential gap leads: overdue monitoring of known ILD, cancer screening in
    the window, lung screening, then muscle enzymes."""
    if lung.state != "none" and "pft" in lung_suggestions:
        return "pft-due" if lung.last_pft else "pft-none"
    if cancer.due:
        return "cancer-enhanced" if cancer.features else "cancer-basic"
    if lung_suggestions:
        return "lung-screen"
    return "enzymes"


def _cancer_detail(cancer: Cancer) -> list[str]:
    if cancer.due:
        return ["cancer-enhanced" if cancer.features else "cancer-basic"]
    if cancer.juvenile:
        return ["cancer-juvenile"]
    if not cancer.in_window and cancer.onset is not None:
        return ["cancer-past-window"]
    return []


def _hold_ct_in_pregnancy(
    facts: ClinicalFacts, t: Thresholds, suggestions: list[str], lung_details: list[str]
) -> tuple[tuple[str, ...], list[str], list[str]]:
    """In pregnancy, the CT-based orders and the HRCT paragraph leave the card: (pregnancy
    evidence when an order was held, else empty; suggestions; lung details)."""
    held = pregnancy(facts, t) if CT_SUGGESTIONS & set(suggestions) else ()
    if not held:
        return held, suggestions, lung_details
    kept = [s for s in suggestions if s not in CT_SUGGESTIONS]
    return held, kept, [d for d in lung_details if d != "hrct-screen"]


def _enzymes_detail(enzymes: Enzymes, due: bool) -> str:
    if enzymes.last_any is None:
        return "enzymes-none"
    return "enzymes-due" if due else "enzymes"


def _steroid_myopathy(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds, enzymes: Enzymes
) -> tuple[str, ...]:
    """Weakness on record with a normal CK on a high dose: the references behind the remark
    (weakness and glucocorticoid records), empty when it does not apply."""
    weakness = facts.refs("muscle_weakness", active_only=True)
    high_dose = status.current_mg >= t.value("exposure.high_dose_min_daily_mg")
    if not (weakness and high_dose and enzymes.normal_ck(t)):
        return ()
    return weakness + status.evidence


def evaluate_myositis(facts: ClinicalFacts, status: SteroidStatus, t: Thresholds) -> Finding | None:
    myositis = facts.of("myositis", active_only=True)
    if not myositis:
        return None
    lung = Lung.of(facts)
    enzymes = Enzymes.of(facts)
    cancer = Cancer.of(facts, t, facts.of("myositis"))
    lung_details, lung_suggestions = lung.advice(facts, t)
    enzymes_due = enzymes.due(facts, t)
    suggestions = list(lung_suggestions)
    if cancer.due:
        suggestions.append(
            "cancer-screening-enhanced" if cancer.features else "cancer-screening-basic"
        )
    if enzymes_due:
        suggestions.append("muscle-enzymes")
    held, suggestions, lung_details = _hold_ct_in_pregnancy(facts, t, suggestions, lung_details)
    if not (suggestions or held):
        return None
    details = ["myositis", *(["pregnancy"] if held else []), *lung_details]
    details += ["pft-values"] if lung.last_pft else []
    details += [*_cancer_detail(cancer), _enzymes_detail(enzymes, enzymes_due)]
    myopathy = _steroid_myopathy(facts, status, t, enzymes)
    details += ["steroid-myopathy"] if myopathy else []
    details = [PREGNANCY_WORDING.get(d, d) for d in details] if held else details
    summary = _lead(lung, lung_suggestions, cancer)
    summary = PREGNANCY_WORDING.get(summary, summary) if held else summary
    indicator: Indicator = "info" if summary.startswith(("lung-screen", "enzymes")) else "warning"
    subtypes = sorted({str(h.properties.get("subtype", "iim")) for h in myositis})
    values = {
        "myositis": ", ".join(SUBTYPE_WORDS.get(s, s) for s in subtypes),
        "myositis_onset": fmt_date(cancer.onset),
        "cancer_window_years": fmt_number(t.value("myositis.cancer_window_years")),
        "risk_features": ", ".join(cancer.features) or "none on record",
        "enzyme_interval_months": fmt_months(t.value("myositis.enzyme_interval_days")),
        "last_ck": _value(enzymes.last_ck),
        "ck_trend": enzymes.trend(t),
        "last_aldolase": _value(enzymes.last_aldolase),
        "current_mg": fmt_number(status.current_mg),
        "ck_upper_normal": fmt_number(t.value(CK_LIMIT)),
        **lung.facts(facts, t),
    }
    evidence = (
        {h.ref for h in myositis}
        | set(lung.evidence)
        | set(enzymes.refs)
        | set(cancer.screened)
        | set(cancer.feature_refs if cancer.due else ())
        | set(myopathy)
        | set(held)
    )
    return Finding(
        summary=summary,
        details=tuple(details),
        indicator=indicator,
        facts=values,
        evidence=tuple(sorted(evidence)),
        suggestions=tuple(suggestions),
        recommended=tuple(suggestions[:1]),
    )


MYOSITIS = RuleKind(
    name="myositis-monitoring",
    roles=ROLES,
    thresholds=THRESHOLDS,
    summaries=(
        *("pft-due", "pft-none", "cancer-enhanced", "cancer-basic", "lung-screen", "enzymes"),
        *("lung-screen-pregnancy", "cancer-pregnancy"),
    ),
    details=(
        "myositis",
        "lung-ild",
        "lung-ild-risk",
        "pft-none",
        "pft-due",
        "lung-screen",
        "lung-screen-pregnancy",
        "hrct-screen",
        "pft-values",
        "cancer-enhanced",
        "cancer-pregnancy",
        "cancer-basic",
        "cancer-juvenile",
        "cancer-past-window",
        "enzymes-due",
        "enzymes-none",
        "enzymes",
        "steroid-myopathy",
        "pregnancy",
    ),
    suggestions=(
        "pft",
        "hrct",
        "cancer-screening-enhanced",
        "cancer-screening-basic",
        "muscle-enzymes",
    ),
    sample_facts={
        "myositis": "immune-mediated necrotising myopathy, juvenile dermatomyositis",
        "myositis_onset": "unknown date",
        "cancer_window_years": "3",
        "risk_features": "dermatomyositis, onset after age 40, anti-TIF1-gamma, dysphagia",
        "enzyme_interval_months": "3",
        "last_ck": "on record (unknown date)",
        "ck_trend": "no earlier value to compare",
        "last_aldolase": "none on record",
        "current_mg": "1250",
        "ck_upper_normal": "200",
        "ild_since": "unknown date",
        "ild_phase": "first year after onset",
        "pft_interval_months": "12",
        "pft_first_months": "6",
        "pft_stable_months": "12",
        "last_pft": "unknown date",
        "last_fvc": "none on record",
        "last_dlco": "none on record",
    },
    evaluate=evaluate_myositis,
)

KINDS = (MYOSITIS,)

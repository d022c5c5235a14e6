"""What the caller told the line, in words a coordinator reads at a glance."""

from __future__ import annotations

from collections.abc import Mapping

from voiceline.flow.model import Flow

# Short labels for the one-line summary in the queue list.
SHORT_LABELS = {
    "age_18_or_older": "18+",
    "mood_disorder_diagnosis": "mood diagnosis",
    "tried_two_antidepressants": "2+ antidepressants",
    "under_care_now": "in care",
    "psychosis_blood_pressure_or_pregnancy": "psychosis/high blood pressure/pregnancy",
    "coverage": "pays by",
    "plan_type": "plan",
    "carrier": "carrier",
}
VALUE_WORDS = {
    "self_pay": "self-pay", "not_sure": "not sure", "va_tricare": "VA/TRICARE", "commercial": "commercial",
    "medicare": "Medicare", "medicaid": "Medicaid", "insurance": "insurance", "other": "other",
}
REASONS = {
    "candidacy": "New patient (candidacy)",
    "insurance": "Insurance and cost",
    "what_to_expect": "What to expect",
    "existing_patient": "Existing patient",
    "general": "General question",
    "missed_call": "Missed call",
}
WINDOWS = {"morning": "Morning", "afternoon": "Afternoon", "evening": "Evening", "any": "Any time"}
LANGUAGES = {"en": "English", "es": "Spanish"}


def value_words(value: object) -> str:
    return VALUE_WORDS.get(str(value), str(value))


def summary(answers: Mapping[str, object]) -> str:
    """"18+ yes · mood diagnosis yes · 2+ antidepressants no · ...", in the order they were asked."""
    parts = [f"{SHORT_LABELS.get(k, k.replace('_', ' '))} {value_words(v)}" for k, v in answers.items()]
    return " · ".join(parts)


def questions(flow: Flow) -> dict[str, str]:
    """field -> the English question the caller answered (for the detail page)."""
    out: dict[str, str] = {}
    english = flow.languages["en"]
    for node in flow.nodes.values():
        if node.field and node.text:
            out[node.field] = (flow.text("en", node.text, **node.text_values) if node.text in english.texts
                               else node.field)
    return out


def reason_words(reason: str) -> str:
    return REASONS.get(reason, reason.replace("_", " ").capitalize())


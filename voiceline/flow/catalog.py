"""Texts the engine itself needs in every language, and the {placeholders} each may use.

Node texts and option labels are named in flow.yaml; these are the ones the line speaks on
its own (reprompts, transfers, the crisis line, callback capture, hours). `voiceline flow
check` refuses a language file that lacks one of them or uses a placeholder the line
cannot fill.
"""

from __future__ import annotations

# Available in every text.
GLOBAL_PLACEHOLDERS = frozenset({"clinic_name", "crisis_key"})

_NONE: frozenset[str] = frozenset()

REQUIRED_TEXTS: dict[str, frozenset[str]] = {
    "system.option": frozenset({"label", "key"}),
    "system.crisis_reminder": _NONE,
    "system.no_input": _NONE,
    "system.invalid": _NONE,
    "system.not_understood": _NONE,
    "system.escalate": _NONE,
    "system.escalate_closed": _NONE,
    "system.crisis_connecting": _NONE,
    "system.crisis_after": _NONE,
    "system.crisis_failed": _NONE,
    "system.crisis_to_patient_services": _NONE,
    "system.transfer_connecting": _NONE,
    "system.transfer_busy": _NONE,
    "system.transfer_closed": frozenset({"hours"}),
    "system.transfer_done": _NONE,
    "system.fallback_open": _NONE,
    "system.fallback_open_keys": _NONE,
    "system.fallback_closed": frozenset({"hours"}),
    "system.fallback_unreached": frozenset({"hours"}),
    "system.fallback_after_dial": frozenset({"hours"}),
    "system.goodbye": _NONE,
    "answer.yes": _NONE,
    "answer.no": _NONE,
    "callback.intro": _NONE,
    "callback.confirm_caller_id": frozenset({"last4"}),
    "callback.use_this_number": _NONE,
    "callback.other_number": _NONE,
    "callback.enter_number": _NONE,
    "callback.invalid_number": _NONE,
    "callback.without_leading_one": _NONE,
    "callback.no_number_heard": _NONE,
    "callback.verify_number": frozenset({"number"}),
    "callback.number_correct": _NONE,
    "callback.number_again": _NONE,
    "callback.no_number": frozenset({"hours"}),
    "callback.window": _NONE,
    "callback.window_morning": _NONE,
    "callback.window_afternoon": _NONE,
    "callback.window_evening": _NONE,
    "callback.window_any": _NONE,
    "callback.voicemail": _NONE,
    "callback.message_offer": _NONE,
    "callback.message_record": _NONE,
    "callback.message_skip": _NONE,
    "callback.record": _NONE,
    "callback.recorded": _NONE,
    "callback.not_recorded": _NONE,
    "callback.nothing_recorded": _NONE,
    "callback.confirmation": frozenset({"last4", "when"}),
    "callback.voicemail_yes": _NONE,
    "callback.voicemail_no": _NONE,
    "callback.voicemail_other_phone": _NONE,
    "callback.voicemail_no_caller_id": _NONE,
    "callback.goodbye": _NONE,
    "callback.when_today": _NONE,
    "callback.when_tomorrow": _NONE,
    "callback.when_weekday": frozenset({"weekday"}),
    "callback.when_unknown": _NONE,
    "callback.when_window": frozenset({"day", "window"}),
    "callback.window_phrase_morning": _NONE,
    "callback.window_phrase_afternoon": _NONE,
    "callback.window_phrase_evening": _NONE,
    "callback.window_phrase_any": _NONE,
    "whisper.prompt": frozenset({"reason", "language"}),
    "reason.general": _NONE,
    "reason.missed_call": _NONE,
    "reason.crisis": _NONE,
    "language.name_en": _NONE,
    "language.name_es": _NONE,
    "language.not_chosen": _NONE,
    "hours.sentence": frozenset({"schedule", "zone"}),
    "hours.sentence_no_zone": frozenset({"schedule"}),
    "hours.always": _NONE,
    "hours.none": _NONE,
    "hours.holiday_today": _NONE,
    "hours.item": frozenset({"days", "times"}),
    "hours.day_range": frozenset({"first", "last"}),
    "hours.times": frozenset({"start", "end"}),
    "hours.and": _NONE,
    **{f"hours.{day}": _NONE for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    **{f"hours.on_{day}": _NONE for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    **{
        f"hours.zone_{zone}": _NONE
        for zone in ("eastern", "central", "mountain", "pacific", "alaska", "hawaii")
    },
}

CALLBACK_WINDOW_KEYS = ("morning", "afternoon", "evening", "any")


def allowed_placeholders(key: str) -> frozenset[str]:
    return GLOBAL_PLACEHOLDERS | REQUIRED_TEXTS.get(key, _NONE)

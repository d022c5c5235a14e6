"""Plain words for the codes stored by the line and the queue, as coordinators read them."""

from __future__ import annotations

from voiceline.queue.work import FINAL_OUTCOME_LABELS, Outcome

CALL_OUTCOMES = {
    "callback_requested": "Asked for a callback",
    "transferred": "Put through to patient services",
    "crisis_line": "Put through to the 988 crisis line",
    "missed": "Hung up before asking for anything",
    "missed_no_number": "Hung up; no number to call back",
    "no_callback_number": "Could not give a callback number",
}

# Twilio's DialCallStatus for the crisis-line transfer.
DIAL_STATUSES = {
    "completed": "Connected",
    "answered": "Connected",
    "busy": "Busy",
    "no-answer": "No answer",
    "failed": "Failed",
    "canceled": "Caller hung up first",
}

RECORDING_STATUSES = {
    "absent": "The message was empty, so Twilio did not keep it.",
    "failed": "Twilio could not save this message.",
}

AUDIT_ACTIONS = {
    "sign_in": "Signed in",
    "sign_in_failed": "Failed sign-in",
    "sign_out": "Signed out",
    "view_callback": "Viewed a request",
    "play_recording": "Played a voice message",
    "play_recording_failed": "Could not play a voice message (Twilio did not give it)",
    "claim": "Claimed a request",
    "release": "Released a request",
    "attempt": "Logged a call attempt",
    "note": "Added a note",
    "reopen": "Reopened a request",
    "list_callbacks": "Viewed the queue",
    "list_calls": "Listed calls",
    "finish_stale_calls": "Closed calls that had no status callback",
    "retention_purge": "Erased requests and calls past the retention period",
    "retention_erase": "Erased a request past the retention period",
    "export": "Exported requests",
    "view_safety_events": "Viewed safety events",
    "view_audit": "Viewed the audit log",
    "staff_add": "Added a staff account",
    "staff_disable": "Disabled a staff account",
    "staff_enable": "Enabled a staff account",
    "staff_password_reset": "Reset a password",
}

VOICEMAIL = {True: "Yes, we may say the clinic's name", False: "No, do not say the clinic's name",
             None: "Not asked, so do not say the clinic's name"}


def first_upper(text: str) -> str:
    """"yes" -> "Yes", "self-pay" -> "Self-pay" (the rest left as the caller said it)."""
    return text[:1].upper() + text[1:]


def call_outcome(code: str | None) -> str:
    if not code:
        return "Call in progress or no outcome recorded"
    return CALL_OUTCOMES.get(code, code.replace("_", " ").capitalize())


def dial_status(code: str | None) -> str:
    if not code:
        return "Not reported yet"
    return DIAL_STATUSES.get(code, code.replace("-", " ").capitalize())


def outcome_effect(outcome: Outcome) -> str:
    """What an attempt's outcome does to the request, said beside it on the form."""
    if outcome.closes:
        return "closes the request"
    return "back to the queue" if outcome.unsuccessful else "back to the queue, not counted as a try"


def node_words(node: str) -> str:
    """A flow node id ("prescreen_age", "transfer.done") as a short readable step."""
    return node.replace(".", " – ").replace("_", " ")


def detail_words(detail: dict | None) -> str:
    """An audit entry's detail as "key: value" pairs, outcome codes in the words staff chose."""
    if not detail:
        return ""

    def value_words(key: str, value) -> str:
        if key in ("outcome", "closed_as", "was"):
            return FINAL_OUTCOME_LABELS.get(value, str(value))
        return str(value)

    return "; ".join(f"{key.replace('_', ' ')}: {value_words(key, value)}"
                     for key, value in detail.items() if value is not None)

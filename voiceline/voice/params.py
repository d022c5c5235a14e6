"""Reading Twilio's form fields and our action-URL state defensively.

A request that passed the signature check came from Twilio, but fields can still be
missing, empty or odd (a Digits of "hangup", a SpeechResult of any length). Whatever
arrives, these functions return something the engine can act on; they never raise.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from voiceline.flow.callback import CALLBACK_PHASES
from voiceline.flow.steps import MAX_TRIES
from voiceline.flow.model import LANGUAGES
from voiceline.flow.nodes import NODE_ID
from voiceline.flow.steps import CallState, Input, Recording

SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
DIGITS = re.compile(r"^[0-9*#]{1,32}$")
NAME = NODE_ID  # node names and reasons in action URLs: the names flow.yaml may use
STATUS = re.compile(r"^[a-z-]{1,20}$")
SPEECH_LIMIT = 200


def sid(value: str | None) -> str:
    """A Twilio SID (CA..., RE...), or "" if the field is missing or malformed."""
    value = (value or "").strip()
    return value if SID.match(value) else ""


def bounded_int(value: str | None, low: int, high: int, default: int = 0) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return default
    return min(max(number, low), high)


def status(value: str | None) -> str:
    value = (value or "").strip().lower()
    return value if STATUS.match(value) else ""


def clean_text(value: str | None, limit: int = SPEECH_LIMIT) -> str:
    """Printable text only, whitespace collapsed, cut to `limit` characters."""
    text = "".join(ch for ch in (value or "")[: limit * 4] if unicodedata.category(ch)[0] != "C" or ch == " ")
    return " ".join(text.split())[:limit]


def language(args: Mapping[str, str]) -> str | None:
    """The action URL's language, or None when it names none we speak (the caller has not
    chosen one: the engine then speaks every language)."""
    lang = args.get("lang")
    return lang if lang in LANGUAGES else None


def state_from(node: str | None, args: Mapping[str, str]) -> CallState:
    reason = args.get("reason") or "general"
    phase = args.get("phase") or ""
    return CallState(
        node=node if node and NAME.match(node) else "",
        lang=language(args) or "en",
        step=bounded_int(args.get("step"), 0, 100_000),
        tries=bounded_int(args.get("tries"), 0, MAX_TRIES),
        reason=reason if NAME.match(reason) else "general",
        phase=phase if phase in CALLBACK_PHASES else "",
    )


def input_from(form: Mapping[str, str]) -> Input:
    digits = (form.get("Digits") or "").strip()
    if digits and not DIGITS.match(digits):
        digits = "?"  # something was pressed (or "hangup"): not a valid choice, not silence
    recording = None
    recording_sid = sid(form.get("RecordingSid"))
    if recording_sid:
        url = (form.get("RecordingUrl") or "").strip()
        recording = Recording(
            sid=recording_sid,
            url=url if url.startswith("https://") and len(url) <= 500 else "",
            duration=bounded_int(form.get("RecordingDuration"), 0, 24 * 3600),
        )
    return Input(digits=digits, speech=clean_text(form.get("SpeechResult")), recording=recording)

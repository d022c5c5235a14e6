"""What the call-flow engine takes and gives back, as plain dataclasses (the verbs frozen).

In: a CallState (where the caller is, carried in each action URL), the caller's Input and a
Context (clock, hours, numbers, and the callable that stores a callback request). Out: a
Step, the verbs to speak as TwiML plus what to record about the step. voice/twiml.py turns
verbs into TwiML; voice/params.py and voice/store.py read and keep the rest. No Flask, no
database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from voiceline.hours import BusinessHours

MENU_TIMEOUT = 6  # seconds a <Gather> waits for a key
MAX_TRIES = 3  # missed or wrong key presses before a question takes its way out
# Callback capture's step answers that are not questions for staff: a number keyed in but not
# yet confirmed, and a "no" to being called at the caller ID. Neither is ever a number to call:
# only a confirmed one is stored as callback_phone (flow/callback.py, queue/intake.py).
KEYED_PHONE = "keyed_phone"
CALLER_ID_DECLINED = "caller_id_declined"


@dataclass(frozen=True)
class CallState:
    """Where a caller is; carried in each action URL, so any worker can serve the next step."""

    node: str
    lang: str = "en"
    step: int = 0
    tries: int = 0
    reason: str = "general"
    phase: str = ""

    def forward(self, **changes) -> CallState:
        """The state for the next request: one step on, tries and phase reset."""
        values = {"step": self.step + 1, "tries": 0, "phase": "", **changes}
        return replace(self, **values)

    def params(self) -> dict[str, str]:
        out = {"lang": self.lang, "step": str(self.step)}
        if self.tries:
            out["tries"] = str(self.tries)
        if self.reason != "general":
            out["reason"] = self.reason
        if self.phase:
            out["phase"] = self.phase
        return out


@dataclass(frozen=True)
class Recording:
    sid: str
    url: str
    duration: int


@dataclass(frozen=True)
class Input:
    digits: str = ""
    speech: str = ""
    recording: Recording | None = None

    @property
    def empty(self) -> bool:
        return not self.digits and not self.speech


@dataclass(frozen=True)
class Target:
    """An action URL, by endpoint name; voice/twiml.py turns it into a URL.

    Frozen and hashable (params become a tuple of pairs), like every verb: a whole response
    can then be a cache key for its TwiML.
    """

    endpoint: str
    params: tuple[tuple[str, str], ...] | dict[str, str] = ()

    def __post_init__(self):
        if isinstance(self.params, dict):
            object.__setattr__(self, "params", tuple(self.params.items()))

    @classmethod
    def step(cls, state: CallState) -> Target:
        return cls("step", {"node": state.node, **state.params()})


@dataclass(frozen=True)
class Say:
    text: str
    lang: str
    personal: bool = False  # it reads back the caller's own number, or its last digits


@dataclass(frozen=True)
class Gather:
    action: Target
    says: tuple[Say, ...] | list[Say]
    lang: str
    num_digits: int | None = 1
    timeout: int = MENU_TIMEOUT
    speech: bool = False
    hints: str | None = None
    finish_on_key: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "says", tuple(self.says))


@dataclass(frozen=True)
class Redirect:
    target: Target


@dataclass(frozen=True)
class Dial:
    number: str
    action: Target | None
    timeout: int
    whisper: Target | None = None


@dataclass(frozen=True)
class Record:
    action: Target
    status_callback: Target
    max_length: int
    finish_on_key: str = "#"  # and the crisis key: it ends the message and connects to the crisis line


@dataclass(frozen=True)
class Hangup:
    pass


Verb = Say | Gather | Redirect | Dial | Record | Hangup


@dataclass
class CallbackDraft:
    """What the caller just told the callback capture, for the store to merge with earlier steps."""

    reason: str
    lang: str
    answers: dict[str, str]
    recording: Recording | None


@dataclass
class CallbackSummary:
    """What was stored, read back to the caller."""

    phone: str | None
    window: str
    voicemail_ok: bool | None
    consent_not_counted: bool = False  # a "yes" for another phone's number, kept as "no"


@dataclass
class Context:
    now: dt.datetime
    hours: BusinessHours
    patient_services_number: str
    crisis_number: str
    crisis_fallback_number: str | None = None
    caller_phone: str | None = None
    call_sid: str = ""
    dial_timeout: int = 25
    recording_max: int = 120
    finalize_callback: Callable[[CallbackDraft], CallbackSummary] | None = None
    # The same, when the caller is on the way to the crisis line: never in their way (a
    # database error is logged and the crisis dial goes on).
    keep_callback: Callable[[CallbackDraft], object] | None = None
    # The number the caller keyed in for a call back, read back when its check is asked again.
    keyed_number: Callable[[], str | None] | None = None

    @property
    def is_open(self) -> bool:
        return self.hours.is_open(self.now)


@dataclass
class Step:
    """A response, and what to remember about the step that produced it."""

    verbs: list[Verb]
    choice: str = ""
    answers: dict[str, str] = field(default_factory=dict)
    presented: str = ""
    language: str | None = None
    safety: bool = False
    outcome: str | None = None

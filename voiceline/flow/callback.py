"""Callback capture: the questions that end a call as a callback request.

The number to call (the caller ID, or one keyed in and read back), the best time, whether a
voicemail may name the clinic, and an optional voice message; then the request is stored
(through Context.finalize_callback) and read back. One question per phase, carried in the
action URL like the node. Used by flow/engine.py, whose words, hours and crisis key it shares.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from voiceline.flow import spoken
from voiceline.flow.model import Node
from voiceline.flow.steps import (
    CALLER_ID_DECLINED,
    KEYED_PHONE,
    MAX_TRIES,
    CallbackDraft,
    CallState,
    Context,
    Gather,
    Hangup,
    Input,
    Record,
    Recording,
    Redirect,
    Say,
    Step,
    Target,
    Verb,
)
from voiceline.phones import (
    last_four,
    parse_keyed_us_number,
    spoken_digits,
    spoken_number,
)

if TYPE_CHECKING:
    from voiceline.flow.engine import Engine

NUMBER_TIMEOUT = 8

# Callback capture, one question per phase: (text, [(key, label, value), ...]).
CALLBACK_QUESTIONS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "caller_id": ("callback.confirm_caller_id", [
        ("1", "callback.use_this_number", "yes"), ("2", "callback.other_number", "no")]),
    "verify": ("callback.verify_number", [
        ("1", "callback.number_correct", "yes"), ("2", "callback.number_again", "no")]),
    "window": ("callback.window", [
        ("1", "callback.window_morning", "morning"), ("2", "callback.window_afternoon", "afternoon"),
        ("3", "callback.window_evening", "evening"), ("4", "callback.window_any", "any")]),
    "voicemail": ("callback.voicemail", [("1", "answer.yes", "yes"), ("2", "answer.no", "no")]),
    "message": ("callback.message_offer", [
        ("1", "callback.message_record", "record"), ("2", "callback.message_skip", "skip")]),
}
# After three failed tries a callback question takes the answer that keeps the caller going
# and protects their privacy: the number they call from, any time, no clinic name on voicemail.
CALLBACK_DEFAULTS = {"caller_id": "yes", "verify": "yes", "window": "any", "voicemail": "no", "message": "skip"}
# "recorded": Twilio's Record action, sent only when there is a recording. "unrecorded": the
# Redirect after the Record, reached when there is none: nothing said, or a key pressed at the
# tone (the crisis key too: Twilio then sends no Digits anywhere). The request is stored there,
# as after any other last question (a caller who hangs up now has asked for a call), and the
# crisis key is offered once more before the read-back. "after_unrecorded": a key pressed at
# that offer; the crisis key is caught by the engine, any other goes on to the read-back.
CALLBACK_PHASES = frozenset({"", "number", "recorded", "unrecorded", "after_unrecorded", *CALLBACK_QUESTIONS})
UNRECORDED_TIMEOUT = 5


class CallbackCapture:
    """The callback node's questions, asked and answered; `engine` speaks for it."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def ask(self, node: Node, state: CallState, phase: str, says: list[Say], ctx: Context,
            *, number: str | None = None) -> list[Verb]:
        """One question (`phase`), after `says`."""
        lang = state.lang
        state = replace(state, node=node.id, phase=phase)
        target = Target.step(state)
        if phase == "number":
            says.append(self.engine.say(lang, "callback.enter_number"))
            return [Gather(action=target, says=says, lang=lang, num_digits=10, timeout=NUMBER_TIMEOUT,
                           finish_on_key="#"), Redirect(target)]
        text, options = CALLBACK_QUESTIONS[phase]
        if phase == "caller_id":
            says.append(self.engine.read_back(lang, text, last4=spoken_digits(last_four(ctx.caller_phone))))
        elif phase == "verify":
            # A reprompt asks the database for the number: it is never put in a URL.
            number = number or (ctx.keyed_number() if ctx.keyed_number is not None else None)
            if number:
                says.append(self.engine.read_back(lang, text, number=spoken_number(number)))
        else:
            says.append(self.engine.say(lang, text))
        says += [self.engine.option_line(lang, label, key) for key, label, _ in options]
        return [Gather(action=target, says=says, lang=lang), Redirect(target)]

    def answer(self, node: Node, state: CallState, given: Input, ctx: Context) -> Step:
        """The caller's answer to the question in `state.phase` (the crisis key never gets here)."""
        lang, phase = state.lang, state.phase
        nxt = state.forward()
        presented = f"{node.id}.{{}}"

        def ask(next_phase: str, says: list[Say] | None = None, **kw) -> list[Verb]:
            return self.ask(node, nxt, next_phase, list(says or []), ctx, **kw)

        if phase not in CALLBACK_PHASES or phase == "":
            verbs, shown = self.engine.present(node.id, nxt, ctx)
            return Step(verbs, choice="restart", presented=shown)

        if phase == "number":
            phone = parse_keyed_us_number(given.digits)
            if phone:
                # Kept as keyed, not yet as the number to call: only the caller's "that's right"
                # makes it that. A number they rejected, or never confirmed before hanging up,
                # may be a stranger's, and nobody calls it.
                return Step(ask("verify", number=phone), choice="number", answers={KEYED_PHONE: phone},
                            presented=presented.format("verify"))
            tries = state.tries + 1
            if tries >= MAX_TRIES:
                says = [self.engine.say(lang, "callback.no_number", hours=self.engine.hours(lang, ctx))]
                return Step([*says, Hangup()], choice="invalid:gave_up", presented=f"{node.id}.no_number",
                            outcome="no_callback_number")
            if given.empty:
                key = "callback.no_number_heard"
            elif len(given.digits) == 10 and given.digits.startswith("1"):
                # A 1 dialled first: the Gather stopped at ten keys, before the last digit.
                key = "callback.without_leading_one"
            else:
                key = "callback.invalid_number"
            retry = replace(state, step=state.step + 1, tries=tries)
            verbs = self.ask(node, retry, "number", [self.engine.say(lang, key)], ctx)
            return Step(verbs, choice="no_input" if given.empty else "invalid", presented=presented.format("number"))

        if phase == "recorded":
            recording = given.recording if given.recording and given.recording.duration > 0 else None
            said = self.engine.say(lang, "callback.recorded" if recording else "callback.not_recorded")
            return self.finalize(node, state, ctx, {}, recording, [said], choice="recorded" if recording else "no_recording")
        if phase == "unrecorded":
            stored = self.finalize(node, state, ctx, {}, None, [], choice="no_recording")
            target = Target.step(replace(nxt, node=node.id, phase="after_unrecorded"))
            offer = Gather(action=target, says=[self.engine.say(lang, "callback.nothing_recorded")], lang=lang,
                           num_digits=1, timeout=UNRECORDED_TIMEOUT)
            return replace(stored, verbs=[offer, *stored.verbs])  # no key: on to the read-back
        if phase == "after_unrecorded":  # stored already; the same call's request is found again
            return self.finalize(node, state, ctx, {}, None, [], choice="no_recording")

        _, options = CALLBACK_QUESTIONS[phase]
        value = next((v for key, _, v in options if key == given.digits), None)
        choice = given.digits
        if value is None:
            tries = state.tries + 1
            if tries < MAX_TRIES:
                kind = "no_input" if given.empty else "invalid"
                retry = replace(state, step=state.step + 1, tries=tries)
                verbs = self.ask(node, retry, phase, [self.engine.say(lang, f"system.{kind}")], ctx)
                return Step(verbs, choice=kind, presented=presented.format(phase))
            value, choice = CALLBACK_DEFAULTS[phase], "default"

        if phase == "caller_id":
            if value == "yes" and ctx.caller_phone:
                return Step(ask("window"), choice=choice, answers={"callback_phone": ctx.caller_phone},
                            presented=presented.format("window"))
            # "Not this phone": if the call ends before another number is confirmed, nobody
            # calls this one back as a missed call (queue/intake.py).
            declined = {CALLER_ID_DECLINED: "yes"} if ctx.caller_phone else {}
            return Step(ask("number"), choice=choice, answers=declined, presented=presented.format("number"))
        if phase == "verify":
            if value == "yes":
                keyed = ctx.keyed_number() if ctx.keyed_number is not None else None
                return Step(ask("window"), choice=choice, answers={"callback_phone": keyed} if keyed else {},
                            presented=presented.format("window"))
            return Step(ask("number"), choice=choice, presented=presented.format("number"))
        if phase == "window":
            return Step(ask("voicemail"), choice=choice, answers={"preferred_window": value},
                        presented=presented.format("voicemail"))
        if phase == "voicemail":
            return Step(ask("message"), choice=choice, answers={"voicemail_ok": value},
                        presented=presented.format("message"))
        # phase == "message"
        if value == "record":
            target = Target.step(replace(nxt, node=node.id, phase="recorded"))
            record = Record(target, Target("recording_status"), max_length=ctx.recording_max,
                            finish_on_key="#" + self.engine.flow.crisis_key)
            unrecorded = Target.step(replace(nxt, node=node.id, phase="unrecorded"))
            return Step([self.engine.say(lang, "callback.record"), record, Redirect(unrecorded)], choice=choice,
                        presented=presented.format("record"))
        return self.finalize(node, state, ctx, {}, None, [], choice=choice)

    def keep_before_crisis(self, node: Node, state: CallState, given: Input, ctx: Context) -> None:
        """The crisis key ended the caller's message: every callback question was answered, so
        their request stands (with what they had said), as when the key ends an empty
        recording (the "unrecorded" phase stores it first). The crisis line is next either way."""
        if state.phase != "recorded" or ctx.keep_callback is None:
            return
        recording = given.recording if given.recording and given.recording.duration > 0 else None
        ctx.keep_callback(CallbackDraft(state.reason, state.lang, {}, recording))

    def finalize(self, node: Node, state: CallState, ctx: Context, answers: dict[str, str],
                 recording: Recording | None, says: list[Say], choice: str) -> Step:
        """Store the request and read back the number and when to expect the call."""
        lang = state.lang
        summary = None
        if ctx.finalize_callback is not None:
            summary = ctx.finalize_callback(CallbackDraft(state.reason, lang, answers, recording))
        if summary is None or not summary.phone:
            says.append(self.engine.say(lang, "callback.no_number", hours=self.engine.hours(lang, ctx)))
            return Step([*says, Hangup()], choice=choice, answers=answers, presented=f"{node.id}.no_number",
                        outcome="no_callback_number")
        when = spoken.expected_call(self.engine.flow, lang, ctx.hours, ctx.now, summary.window)
        says.append(self.engine.read_back(lang, "callback.confirmation", last4=spoken_digits(last_four(summary.phone)),
                                   when=when))
        if summary.voicemail_ok:
            says.append(self.engine.say(lang, "callback.voicemail_yes"))
        elif summary.consent_not_counted:
            # Consent counts only from the phone itself (queue/intake.py): a "yes" from another
            # phone is kept as "no", and the caller who gave it hears why, not a bare "we won't"
            # (with the caller ID withheld, the line cannot tell it is another phone).
            why = "callback.voicemail_other_phone" if ctx.caller_phone else "callback.voicemail_no_caller_id"
            says.append(self.engine.say(lang, why))
        elif summary.voicemail_ok is not None:
            says.append(self.engine.say(lang, "callback.voicemail_no"))
        says.append(self.engine.say(lang, "callback.goodbye"))
        return Step([*says, Hangup()], choice=choice, answers=answers, presented=f"{node.id}.done",
                    outcome="callback_requested")

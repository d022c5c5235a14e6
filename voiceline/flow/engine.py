"""The call-flow engine: where the caller is and what they pressed -> what they hear next.

Pure: no Flask, no database. The webhook views hand it a CallState (parsed from the action
URL), the caller's Input and a Context (clock, hours, numbers, and one callable that stores
a callback request), and get back a Step: the verbs to speak as TwiML plus what to record
about this step (those values are defined in flow/steps.py). Every response that waits for
input is a <Gather> followed by a <Redirect> to the same action, so silence is handled by
the same code as a wrong key.
"""

from __future__ import annotations

from dataclasses import replace

from voiceline.flow import spoken
from voiceline.flow.model import (
    CALLBACK,
    CHOICE,
    INFO,
    INPUT_KINDS,
    LANGUAGES,
    MENU,
    SPEECH,
    STAFF_LANGUAGE,
    TRANSFER,
    YES_NO,
    Flow,
    Node,
)
from voiceline.flow.steps import (
    CallbackDraft,
    CallState,
    Context,
    Dial,
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
from voiceline.phones import last_four, parse_keyed_us_number, spoken_digits, spoken_number

MAX_TRIES = 3
NUMBER_TIMEOUT = 8
WHISPER_TIMEOUT = 8
CRISIS_RING_SECONDS = 60
SPEECH_MAX_CHARS = 200

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
# tone (the crisis key too: Twilio then sends no Digits anywhere), so the crisis key is offered
# once more. "after_unrecorded": the answer to that offer.
CALLBACK_PHASES = frozenset({"", "number", "recorded", "unrecorded", "after_unrecorded", *CALLBACK_QUESTIONS})
UNRECORDED_TIMEOUT = 5


class Engine:
    def __init__(self, flow: Flow):
        self.flow = flow

    # ---- words -------------------------------------------------------------------------
    def say(self, lang: str, text_key: str, /, **values: str) -> Say:
        return Say(self.flow.text(lang, text_key, **values), lang)

    def node_say(self, lang: str, node: Node) -> Say:
        """A node's own text, with the values only it can fill in ({skip_key})."""
        return self.say(lang, node.text, **node.text_values)

    def read_back(self, lang: str, text_key: str, /, **values: str) -> Say:
        """A sentence with the caller's own number (or its last digits) in it: built for
        this caller only (voice/twiml.py never keeps a document that holds one)."""
        return Say(self.flow.text(lang, text_key, **values), lang, personal=True)

    def languages_for(self, lang: str | None) -> tuple[str, ...]:
        """The caller's language, or every language while they have not chosen one (at the
        bilingual greeting, or on an action URL that does not say)."""
        return (lang,) if lang in self.flow.languages else tuple(LANGUAGES)

    def chosen_language(self, state: CallState) -> str | None:
        """None at a bilingual node: the call starts out in English only as a default."""
        node = self.flow.nodes.get(state.node)
        return None if node is not None and node.bilingual else state.lang

    @staticmethod
    def lang_param(langs: tuple[str, ...]) -> dict[str, str]:
        """The action URL's lang: omitted while the caller speaks every language."""
        return {"lang": langs[0]} if len(langs) == 1 else {}

    def option_line(self, lang: str, label: str, key: str) -> Say:
        return Say(self.flow.text(lang, "system.option", label=self.flow.text(lang, label), key=key), lang)

    def hours(self, lang: str, ctx: Context) -> str:
        return spoken.hours_sentence(self.flow, lang, ctx.hours, ctx.now)

    # ---- the greeting and the graph -------------------------------------------------------
    def incoming(self, ctx: Context) -> Step:
        state = CallState(node=self.flow.start, lang="en", step=0)
        verbs, presented = self.present(self.flow.start, state.forward(), ctx)
        return Step(verbs, choice="incoming", presented=presented)

    def present(self, node_id: str, state: CallState, ctx: Context, says: list[Say] | None = None,
                *, language_chosen: bool = True) -> tuple[list[Verb], str]:
        """What the caller hears on arriving at `node_id` (info nodes play straight through).
        `language_chosen` False: sent on from the greeting without choosing (the whisper says so)."""
        says = list(says or [])
        node = self.flow.nodes[node_id]
        while node.kind == INFO:
            says.append(self.node_say(state.lang, node))
            node = self.flow.nodes[node.next]
        state = replace(state, node=node.id, tries=0, phase="")
        if node.kind in (MENU, YES_NO, CHOICE):
            return self._menu(node, state, says, full=True), node.id
        if node.kind == SPEECH:
            return self._speech(node, state, says), node.id
        if node.kind == TRANSFER:
            return self._transfer(node, state, says, ctx, language_chosen=language_chosen)
        if node.kind == CALLBACK:
            says.append(self.say(state.lang, node.text or "callback.intro"))
            first = "caller_id" if ctx.caller_phone else "number"
            return self._callback_ask(node, state, first, says, ctx), f"{node.id}.{first}"
        # goodbye
        says.append(self.node_say(state.lang, node))
        return [*says, Hangup()], node.id

    def _menu(self, node: Node, state: CallState, says: list[Say], full: bool) -> list[Verb]:
        lang = state.lang
        if node.bilingual:
            if full:
                says += [self.node_say(code, node) for code in LANGUAGES]
            says += [self.option_line(o.lang, o.label, o.key) for o in node.options]
        else:
            if full or node.kind != MENU:
                says.append(self.node_say(lang, node))
            says += [self.option_line(lang, o.label, o.key) for o in node.options]
            if node.crisis_reminder:
                says.append(self.say(lang, "system.crisis_reminder"))
        target = Target.step(state)
        return [Gather(action=target, says=says, lang=lang), Redirect(target)]

    def _speech(self, node: Node, state: CallState, says: list[Say]) -> list[Verb]:
        says.append(self.node_say(state.lang, node))
        target = Target.step(state)
        hints = self.flow.text(state.lang, node.hints) if node.hints else None
        return [Gather(action=target, says=says, lang=state.lang, num_digits=1, speech=True, hints=hints),
                Redirect(target)]

    def _transfer(self, node: Node, state: CallState, says: list[Say], ctx: Context,
                  *, language_chosen: bool = True) -> tuple[list[Verb], str]:
        state = replace(state, reason=node.reason or state.reason)
        lang = state.lang
        if not ctx.is_open:
            says.append(self.say(lang, "system.transfer_closed", hours=self.hours(lang, ctx)))
            return self.present(node.fallback, state, ctx, says)
        says.append(self.say(lang, node.text or "system.transfer_connecting"))
        whisper = Target("whisper", {"call": ctx.call_sid, "reason": state.reason,
                                     **({"lang": lang} if language_chosen else {})})
        dial = Dial(ctx.patient_services_number, Target("dial_result", {"node": node.id, **state.params()}),
                    timeout=ctx.dial_timeout, whisper=whisper)
        return [*says, dial], node.id

    # ---- input ---------------------------------------------------------------------------
    def advance(self, state: CallState, given: Input, ctx: Context) -> Step:
        if state.lang not in self.flow.languages:
            state = replace(state, lang="en")
        node = self.flow.nodes.get(state.node)
        if node is None or node.kind not in INPUT_KINDS:
            # A stale URL (prompts changed mid-call) or a node that takes no input.
            restart = node.id if node is not None else self.flow.main_menu
            verbs, presented = self.present(restart, state.forward(), ctx)
            return Step(verbs, choice="restart", presented=presented)
        if given.digits == self.flow.crisis_key:  # at every question, and while a message is recorded
            return self.crisis(state, ctx)
        if node.kind == CALLBACK:
            return self._callback_input(node, state, given, ctx)
        if node.kind == SPEECH:
            return self._speech_input(node, state, given, ctx)
        option = node.option(given.digits) if given.digits else None
        if option is None:
            return self._failure(node, state, given, ctx)
        answers = {node.field: option.value} if node.field and option.value is not None else {}
        nxt = state.forward(lang=option.lang or state.lang, reason=option.reason or state.reason)
        verbs, presented = self.present(option.next, nxt, ctx)
        return Step(verbs, choice=option.key, answers=answers, presented=presented, language=option.lang)

    def _speech_input(self, node: Node, state: CallState, given: Input, ctx: Context) -> Step:
        speech = " ".join(given.speech.split())[:SPEECH_MAX_CHARS]
        if speech:
            choice, answers = "speech", {node.field: speech}
        elif given.digits == node.skip_key or not given.digits:
            choice, answers = ("skip" if given.digits else "no_input"), {}
        elif state.tries + 1 < MAX_TRIES:
            return self._failure(node, state, given, ctx)
        else:
            choice, answers = "invalid", {}
        verbs, presented = self.present(node.next, state.forward(), ctx)
        return Step(verbs, choice=choice, answers=answers, presented=presented)

    def _failure(self, node: Node, state: CallState, given: Input, ctx: Context) -> Step:
        kind = "no_input" if given.empty else "invalid"
        tries = state.tries + 1
        chosen = self.chosen_language(state)
        langs = self.languages_for(chosen)
        if tries >= MAX_TRIES:
            escalate = "system.escalate" if ctx.is_open else "system.escalate_closed"
            says = [self.say(code, escalate) for code in langs]
            verbs, presented = self.present(self.flow.escalate_to, state.forward(), ctx, says,
                                            language_chosen=chosen is not None)
            return Step(verbs, choice=f"{kind}:escalated", presented=presented)
        says = [self.say(code, f"system.{kind}") for code in langs]
        retry = replace(state, step=state.step + 1, tries=tries)
        return Step(self._menu(node, retry, says, full=False), choice=kind, presented=node.id)

    # ---- transfers -------------------------------------------------------------------------
    def dial_result(self, state: CallState, status: str, accepted: bool, ctx: Context) -> Step:
        """After the <Dial> to patient services: connected, or on to a callback request."""
        lang = state.lang if state.lang in self.flow.languages else "en"
        if accepted and status in ("completed", "answered"):
            return Step([self.say(lang, "system.transfer_done"), Hangup()], choice=status,
                        presented="transfer.done", outcome="transferred")
        node = self.flow.nodes.get(state.node)
        fallback = node.fallback if node is not None and node.kind == TRANSFER else self.flow.callback_node
        says = [self.say(lang, "system.transfer_busy")]
        verbs, presented = self.present(fallback, state.forward(lang=lang), ctx, says)
        return Step(verbs, choice=status or "unknown", presented=presented)

    def whisper(self, call_sid: str, reason: str, caller_lang: str | None) -> list[Verb]:
        """Played to whoever answers at patient services, before the caller is connected."""
        staff = STAFF_LANGUAGE
        texts = self.flow.languages[staff].texts
        reason_key = f"reason.{reason}" if f"reason.{reason}" in texts else "reason.general"
        lang_key = f"language.name_{caller_lang}" if caller_lang in LANGUAGES else "language.not_chosen"
        prompt = self.say(staff, "whisper.prompt", reason=self.flow.text(staff, reason_key),
                          language=self.flow.text(staff, lang_key))
        action = Target("whisper_answer", {"call": call_sid})
        return [Gather(action=action, says=[prompt], lang=staff, timeout=WHISPER_TIMEOUT), Hangup()]

    @staticmethod
    def whisper_answer(digits: str) -> tuple[list[Verb], bool]:
        """Pressing 1 accepts: an empty response bridges the call. Anything else hangs up
        the coordinator's leg, so a voicemail box never swallows the caller."""
        if digits == "1":
            return [], True
        return [Hangup()], False

    # ---- crisis line ------------------------------------------------------------------------
    def crisis(self, state: CallState, ctx: Context) -> Step:
        """The crisis key: pressed at the greeting, before a language was chosen, the line
        speaks both (a Spanish speaker in crisis must not hear English only)."""
        return Step(self.crisis_verbs(self.chosen_language(state), ctx), choice="crisis", presented="crisis",
                    safety=True, outcome="crisis_line")

    def crisis_verbs(self, lang: str | None, ctx: Context) -> list[Verb]:
        langs = self.languages_for(lang)
        action = Target("crisis_result", {**self.lang_param(langs), "attempt": "1"})
        return [*(self.say(code, "system.crisis_connecting") for code in langs),
                Dial(ctx.crisis_number, action, timeout=CRISIS_RING_SECONDS)]

    def crisis_result(self, lang: str | None, attempt: int, status: str, ctx: Context) -> list[Verb]:
        """988 answered and the call ended: a kind goodbye. Failed: try the 800 number once."""
        langs = self.languages_for(lang)
        if status in ("completed", "answered"):
            return [*(self.say(code, "system.crisis_after") for code in langs), Hangup()]
        fallback = ctx.crisis_fallback_number
        if attempt < 2 and fallback and fallback != ctx.crisis_number:
            action = Target("crisis_result", {**self.lang_param(langs), "attempt": "2"})
            return [Dial(fallback, action, timeout=CRISIS_RING_SECONDS)]
        return [*(self.say(code, "system.crisis_failed") for code in langs), Hangup()]

    # ---- callback capture --------------------------------------------------------------------
    def _callback_ask(self, node: Node, state: CallState, phase: str, says: list[Say], ctx: Context,
                      *, number: str | None = None) -> list[Verb]:
        lang = state.lang
        state = replace(state, node=node.id, phase=phase)
        target = Target.step(state)
        if phase == "number":
            says.append(self.say(lang, "callback.enter_number"))
            return [Gather(action=target, says=says, lang=lang, num_digits=10, timeout=NUMBER_TIMEOUT,
                           finish_on_key="#"), Redirect(target)]
        text, options = CALLBACK_QUESTIONS[phase]
        if phase == "caller_id":
            says.append(self.read_back(lang, text, last4=spoken_digits(last_four(ctx.caller_phone))))
        elif phase == "verify":
            # A reprompt asks the database for the number: it is never put in a URL.
            number = number or (ctx.keyed_number() if ctx.keyed_number is not None else None)
            if number:
                says.append(self.read_back(lang, text, number=spoken_number(number)))
        else:
            says.append(self.say(lang, text))
        says += [self.option_line(lang, label, key) for key, label, _ in options]
        return [Gather(action=target, says=says, lang=lang), Redirect(target)]

    def _callback_input(self, node: Node, state: CallState, given: Input, ctx: Context) -> Step:
        lang, phase = state.lang, state.phase
        nxt = state.forward()
        presented = f"{node.id}.{{}}"

        def ask(next_phase: str, says: list[Say] | None = None, **kw) -> list[Verb]:
            return self._callback_ask(node, nxt, next_phase, list(says or []), ctx, **kw)

        if phase not in CALLBACK_PHASES or phase == "":
            verbs, shown = self.present(node.id, nxt, ctx)
            return Step(verbs, choice="restart", presented=shown)

        if phase == "number":
            phone = parse_keyed_us_number(given.digits)
            if phone:
                return Step(ask("verify", number=phone), choice="number", answers={"callback_phone": phone},
                            presented=presented.format("verify"))
            tries = state.tries + 1
            if tries >= MAX_TRIES:
                says = [self.say(lang, "callback.no_number", hours=self.hours(lang, ctx))]
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
            verbs = self._callback_ask(node, retry, "number", [self.say(lang, key)], ctx)
            return Step(verbs, choice="no_input" if given.empty else "invalid", presented=presented.format("number"))

        if phase == "recorded":
            recording = given.recording if given.recording and given.recording.duration > 0 else None
            said = self.say(lang, "callback.recorded" if recording else "callback.not_recorded")
            return self._finalize(node, state, ctx, {}, recording, [said], choice="recorded" if recording else "no_recording")
        if phase == "unrecorded":
            target = Target.step(replace(nxt, node=node.id, phase="after_unrecorded"))
            offer = Gather(action=target, says=[self.say(lang, "callback.nothing_recorded")], lang=lang,
                           num_digits=1, timeout=UNRECORDED_TIMEOUT)
            return Step([offer, Redirect(target)], choice="no_recording", presented=presented.format("unrecorded"))
        if phase == "after_unrecorded":  # the crisis key was caught above; anything else goes on
            return self._finalize(node, state, ctx, {}, None, [], choice="no_recording")

        _, options = CALLBACK_QUESTIONS[phase]
        value = next((v for key, _, v in options if key == given.digits), None)
        choice = given.digits
        if value is None:
            tries = state.tries + 1
            if tries < MAX_TRIES:
                kind = "no_input" if given.empty else "invalid"
                retry = replace(state, step=state.step + 1, tries=tries)
                verbs = self._callback_ask(node, retry, phase, [self.say(lang, f"system.{kind}")], ctx)
                return Step(verbs, choice=kind, presented=presented.format(phase))
            value, choice = CALLBACK_DEFAULTS[phase], "default"

        if phase == "caller_id":
            if value == "yes" and ctx.caller_phone:
                return Step(ask("window"), choice=choice, answers={"callback_phone": ctx.caller_phone},
                            presented=presented.format("window"))
            return Step(ask("number"), choice=choice, presented=presented.format("number"))
        if phase == "verify":
            if value == "yes":
                return Step(ask("window"), choice=choice, presented=presented.format("window"))
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
                            finish_on_key="#" + self.flow.crisis_key)
            unrecorded = Target.step(replace(nxt, node=node.id, phase="unrecorded"))
            return Step([self.say(lang, "callback.record"), record, Redirect(unrecorded)], choice=choice,
                        presented=presented.format("record"))
        return self._finalize(node, state, ctx, {}, None, [], choice=choice)

    def _finalize(self, node: Node, state: CallState, ctx: Context, answers: dict[str, str],
                  recording: Recording | None, says: list[Say], choice: str) -> Step:
        lang = state.lang
        summary = None
        if ctx.finalize_callback is not None:
            summary = ctx.finalize_callback(CallbackDraft(state.reason, lang, answers, recording))
        if summary is None or not summary.phone:
            says.append(self.say(lang, "callback.no_number", hours=self.hours(lang, ctx)))
            return Step([*says, Hangup()], choice=choice, answers=answers, presented=f"{node.id}.no_number",
                        outcome="no_callback_number")
        when = spoken.expected_call(self.flow, lang, ctx.hours, ctx.now, summary.window)
        says.append(self.read_back(lang, "callback.confirmation", last4=spoken_digits(last_four(summary.phone)),
                                   when=when))
        if summary.voicemail_ok is not None:
            says.append(self.say(lang, "callback.voicemail_yes" if summary.voicemail_ok else "callback.voicemail_no"))
        says.append(self.say(lang, "callback.goodbye"))
        return Step([*says, Hangup()], choice=choice, answers=answers, presented=f"{node.id}.done",
                    outcome="callback_requested")

    # ---- when the database is down --------------------------------------------------------------
    def fallback(self, lang: str | None, ctx: Context) -> list[Verb]:
        """Needs nothing but settings: open, straight to patient services; closed, the hours."""
        langs = self.languages_for(lang)
        if ctx.is_open:
            says = [self.say(code, "system.fallback_open") for code in langs]
            action = Target("fallback_result", self.lang_param(langs))
            return [*says, Dial(ctx.patient_services_number, action, timeout=ctx.dial_timeout)]
        says = [self.say(code, "system.fallback_closed", hours=self.hours(code, ctx)) for code in langs]
        gather = Gather(action=Target("crisis", self.lang_param(langs)), says=says, lang=langs[0], timeout=5)
        return [gather, *(self.say(code, "system.goodbye") for code in langs), Hangup()]

    def static_fallback(self, ctx: Context) -> list[Verb]:
        """TwiML for the number's Fallback URL, hosted apart from this app (a TwiML Bin): it
        must work when this app is down, so it has no action URLs at all. Both languages."""
        verbs: list[Verb] = [self.say(code, "system.fallback_open") for code in LANGUAGES]
        verbs.append(Dial(ctx.patient_services_number, action=None, timeout=ctx.dial_timeout))
        # Heard after the dial whatever its result, so also by a caller whose conversation the
        # coordinator ended: not "we couldn't reach" (there is no action URL to tell them apart).
        verbs += [self.say(code, "system.fallback_after_dial", hours=self.hours(code, ctx)) for code in LANGUAGES]
        return [*verbs, Hangup()]

    def fallback_result(self, lang: str | None, status: str, ctx: Context) -> list[Verb]:
        langs = self.languages_for(lang)
        if status in ("completed", "answered"):
            return [*(self.say(code, "system.transfer_done") for code in langs), Hangup()]
        return [*(self.say(code, "system.fallback_unreached", hours=self.hours(code, ctx)) for code in langs),
                Hangup()]

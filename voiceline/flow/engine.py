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
from voiceline.flow.callback import CallbackCapture
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
    MAX_TRIES,
    CallState,
    Context,
    Dial,
    Gather,
    Hangup,
    Input,
    Redirect,
    Say,
    Step,
    Target,
    Verb,
)

WHISPER_TIMEOUT = 8
CRISIS_RING_SECONDS = 60
# While the database is down and the line open: how long the crisis key is waited for after
# the apology, before patient services is dialled.
FALLBACK_KEY_SECONDS = 2
SPEECH_MAX_CHARS = 200
# The crisis line's dials, counted in crisis_result's action URL: the 988 Lifeline, its
# fallback number, then (open only) patient services when neither answered.
CRISIS_ATTEMPT_LINE, CRISIS_ATTEMPT_FALLBACK, CRISIS_ATTEMPT_PATIENT_SERVICES = 1, 2, 3
CRISIS_REASON = "crisis"  # the whisper's reason when the crisis line could not be reached


class Engine:
    def __init__(self, flow: Flow):
        self.flow = flow
        self.callbacks = CallbackCapture(self)

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
            return self.callbacks.ask(node, state, first, says, ctx), f"{node.id}.{first}"
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
            says += self._not_taken(node, lang, self.say(lang, "system.transfer_closed", hours=self.hours(lang, ctx)))
            return self.present(node.fallback, state, ctx, says)
        says.append(self.say(lang, node.text or "system.transfer_connecting"))
        whisper = Target("whisper", {"call": ctx.call_sid, "reason": state.reason,
                                     **({"lang": lang} if language_chosen else {})})
        dial = Dial(ctx.patient_services_number, Target("dial_result", {"node": node.id, **state.params()}),
                    timeout=ctx.dial_timeout, whisper=whisper)
        return [*says, dial], node.id

    def _not_taken(self, node: Node | None, lang: str, why: Say) -> list[Say]:
        """Patient services cannot take the call (closed, or nobody answered): why, then the
        transfer node's `closed_text` if it has one (what to do if it cannot wait)."""
        return [why, self.say(lang, node.closed_text)] if node is not None and node.closed_text else [why]

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
            if node.kind == CALLBACK:
                self.callbacks.keep_before_crisis(node, state, given, ctx)
            return self.crisis(state, ctx)
        if given.digits == self.flow.operator_key and node.kind in (MENU, YES_NO, CHOICE, SPEECH):
            # The operator key ("0"): at once, without a sorry; before a language is chosen,
            # where the call goes is said in both first.
            return self._escalate(state, ctx, "operator", announce=self.chosen_language(state) is None)
        if node.kind == CALLBACK:
            return self.callbacks.answer(node, state, given, ctx)
        if node.kind == SPEECH:
            return self._speech_input(node, state, given, ctx)
        option = node.option(given.digits) if given.digits else None
        if option is None:
            return self._failure(node, state, given, ctx)
        answers = {node.field: option.value} if node.field and option.value is not None else {}
        nxt = state.forward(lang=option.lang or state.lang, reason=option.reason or state.reason)
        verbs, presented = self.present(option.next, nxt, ctx)
        return Step(verbs, choice=option.key, answers=answers, presented=presented, language=option.lang)

    def _escalate(self, state: CallState, ctx: Context, choice: str, *, announce: bool) -> Step:
        """To escalate_to: a person when open; closed, the hours and a callback request.
        `announce`: say so first (in every language while none is chosen)."""
        chosen = self.chosen_language(state)
        says = []
        if announce:
            escalate = "system.escalate" if ctx.is_open else "system.escalate_closed"
            says = [self.say(code, escalate) for code in self.languages_for(chosen)]
        verbs, presented = self.present(self.flow.escalate_to, state.forward(), ctx, says,
                                        language_chosen=chosen is not None)
        return Step(verbs, choice=choice, presented=presented)

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
        if tries >= MAX_TRIES:
            return self._escalate(state, ctx, f"{kind}:escalated", announce=True)
        retry = replace(state, step=state.step + 1, tries=tries)
        if node.kind == SPEECH:  # a key that is not the skip key: ask again, still listening for speech
            verbs = self._speech(node, retry, [self.say(state.lang, "system.not_understood")])
            return Step(verbs, choice=kind, presented=node.id)
        says = [self.say(code, f"system.{kind}") for code in self.languages_for(self.chosen_language(state))]
        return Step(self._menu(node, retry, says, full=False), choice=kind, presented=node.id)

    # ---- transfers -------------------------------------------------------------------------
    def dial_result(self, state: CallState, status: str, accepted: bool, ctx: Context) -> Step:
        """After the <Dial> to patient services: connected, or on to a callback request."""
        lang = state.lang if state.lang in self.flow.languages else "en"
        if accepted and status in ("completed", "answered"):
            return Step([self.say(lang, "system.transfer_done"), Hangup()], choice=status,
                        presented="transfer.done", outcome="transferred")
        node = self.flow.nodes.get(state.node)
        transfer = node is not None and node.kind == TRANSFER
        fallback = node.fallback if transfer else self.flow.callback_node
        says = self._not_taken(node if transfer else None, lang, self.say(lang, "system.transfer_busy"))
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

    def crisis_result(self, lang: str | None, attempt: int, status: str, ctx: Context,
                      *, bridged: bool = False) -> list[Verb]:
        """988 answered and the call ended: a kind goodbye. Failed: try the 800 number once;
        failed again, while patient services is open, a coordinator (told why in the whisper),
        rather than leave the caller with a number to dial. `bridged`: that coordinator took it."""
        langs = self.languages_for(lang)

        def last_words(text_key: str) -> list[Verb]:
            return [*(self.say(code, text_key) for code in langs), Hangup()]

        if attempt >= CRISIS_ATTEMPT_PATIENT_SERVICES:
            return last_words("system.crisis_after" if bridged else "system.crisis_failed")
        if status in ("completed", "answered"):
            return last_words("system.crisis_after")
        fallback = ctx.crisis_fallback_number
        if attempt < CRISIS_ATTEMPT_FALLBACK and fallback and fallback != ctx.crisis_number:
            action = Target("crisis_result", {**self.lang_param(langs), "attempt": str(CRISIS_ATTEMPT_FALLBACK)})
            return [Dial(fallback, action, timeout=CRISIS_RING_SECONDS)]
        if ctx.is_open and ctx.patient_services_number:
            action = Target("crisis_result", {**self.lang_param(langs),
                                              "attempt": str(CRISIS_ATTEMPT_PATIENT_SERVICES)})
            whisper = Target("whisper", {"call": ctx.call_sid, "reason": CRISIS_REASON, **self.lang_param(langs)})
            says = [self.say(code, "system.crisis_to_patient_services") for code in langs]
            return [*says, Dial(ctx.patient_services_number, action, timeout=ctx.dial_timeout, whisper=whisper)]
        return last_words("system.crisis_failed")

    # ---- when the database is down --------------------------------------------------------------
    def fallback(self, lang: str | None, ctx: Context) -> list[Verb]:
        """Needs nothing but settings: open, straight to patient services; closed, the hours."""
        langs = self.languages_for(lang)
        if ctx.is_open:
            # The crisis key works here too: a short pause for it after the words, then the dial.
            says = [self.say(code, "system.fallback_open_keys") for code in langs]
            gather = Gather(action=Target("crisis", self.lang_param(langs)), says=says, lang=langs[0],
                            num_digits=1, timeout=FALLBACK_KEY_SECONDS)
            return [gather, self.fallback_dial(lang, ctx)]
        says = [self.say(code, "system.fallback_closed", hours=self.hours(code, ctx)) for code in langs]
        gather = Gather(action=Target("crisis", self.lang_param(langs)), says=says, lang=langs[0], timeout=5)
        return [gather, *(self.say(code, "system.goodbye") for code in langs), Hangup()]

    def fallback_dial(self, lang: str | None, ctx: Context) -> Dial:
        """Patient services, while the database is down and the line is open."""
        action = Target("fallback_result", self.lang_param(self.languages_for(lang)))
        return Dial(ctx.patient_services_number, action, timeout=ctx.dial_timeout)

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

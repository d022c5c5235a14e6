"""What the line must never tell a caller, and what it must always tell one: checked in
en.yaml and es.yaml with the rest of the flow, so that `voiceline flow check` and start-up
refuse an edit that breaks a safety or claims rule, not only the test suite.

- No text says ketamine is FDA-approved (only nasal esketamine, Spravato, is), and a
  sentence that names the FDA names Spravato or esketamine, or says what is not approved.
- No text promises an outcome: a cure, a guarantee, relief, or how fast treatment works.
- No text tells a caller whether they are a candidate: only a psychiatrist's consultation can.
- The greeting offers 9 1 1 and the 9 8 8 Lifeline and says which key reaches it; the
  reminder at the menus and the offer to leave a message say that key too.

The patterns are deliberately narrow enough that a careful text passes: "IV ketamine is not
FDA-approved", "whether treatment is right for you", "without enough relief".
"""

from __future__ import annotations

import re

from pathlib import Path

from voiceline.flow.checks import text_users
from voiceline.flow.files import Problem, display
from voiceline.flow.model import MENU, Language, Node, placeholders

IGNORE = re.IGNORECASE


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?;])\s+", text) if s]


def _quote(text: str, limit: int = 90) -> str:
    text = text.strip()
    return f'"{text}"' if len(text) <= limit else f'"{text[:limit - 1].rstrip()}…"'


# --- approval claims ------------------------------------------------------------------------

KETAMINE = re.compile(r"\bketamin[ae]\b", IGNORE)  # not esketamine / esketamina
ESKETAMINE = re.compile(r"\bspravato\b|\besketamin[ae]\b", IGNORE)
FDA = re.compile(r"\bF\.?\s?D\.?\s?A\b", IGNORE)
# An approval said of a drug (not "your plan must approve it first", "aprobarlo").
APPROVAL = re.compile(
    r"\bapproved\b|\bapproval\b|\bcleared\b"
    r"|\baprobad[oa]s?\b|\baprob[óo]\b|\baprobación\b|\bautorizad[oa]s?\b",
    IGNORE,
)
# A negation a few words before an approval denies it: "is not FDA-approved", "has never been
# approved", "no está aprobada", "la FDA no ha aprobado"; never "not only", "no solo".
NEGATION = {
    "en": re.compile(r"(?:\bnot\b|n't\b|\bnever\b|\bneither\b|\bnor\b)(?!\s+(?:only|just)\b)", IGNORE),
    "es": re.compile(r"(?:\bno\b|\bnunca\b|\bni\b)(?!\s+(?:solo|sólo|solamente)\b)", IGNORE),
}
# "Spravato is FDA-approved, and IV ketamine is not." / "..., la ketamina no."
ELLIPTICAL_DENIAL = {
    "en": re.compile(r"\bketamine\b(?:\s+\w+){0,3}?\s+(?:is|are)\s*(?:not|n't)\s*(?:[,;.!?]|$)", IGNORE),
    "es": re.compile(r"\bketamina\b(?:\s+\w+){0,3}?\s+no(?:\s+lo\s+(?:está|es))?\s*(?:[,;.!?]|$)", IGNORE),
}


def _denied(sentence: str, start: int, code: str) -> bool:
    before = sentence[:start].split()[-4:]
    return bool(NEGATION[code].search(" ".join(before)))


def approval_problem(sentence: str, code: str) -> str | None:
    """Why this sentence misstates what the FDA has approved, or None."""
    approvals = list(APPROVAL.finditer(sentence))
    undenied = [m for m in approvals if not _denied(sentence, m.start(), code)]
    if KETAMINE.search(sentence) and undenied:
        if not (ESKETAMINE.search(sentence) and ELLIPTICAL_DENIAL[code].search(sentence)):
            return ("says ketamine is FDA-approved: only nasal esketamine (Spravato) is; IV ketamine "
                    "is not FDA-approved for depression or any psychiatric use")
    if FDA.search(sentence) and not ESKETAMINE.search(sentence):
        mentions = approvals + list(FDA.finditer(sentence))
        if not any(_denied(sentence, m.start(), code) for m in mentions):
            return ("names the FDA without naming Spravato (esketamine): only nasal esketamine is "
                    "FDA-approved, so a sentence about the FDA must be about Spravato or say what "
                    "is not approved")
    return None


# --- promises -------------------------------------------------------------------------------

PROMISES = {
    "en": re.compile(
        r"\bguarantee[sd]?\b|\bguaranteeing\b|\bcure[sd]?\b|\bcuring\b"
        r"|\bwill (?:work|help you|cure|fix|relieve|end|stop|lift|improve|heal|make you feel)\b"
        r"|\b(?:you(?:'ll| will)|you are going to) (?:feel|be|get) (?:better|well|happier|relief|cured|healed)\b"
        r"|\b(?:works?|working|acts?|acting) (?:fast|quickly|rapidly|immediately|instantly|right away"
        r"|in (?:hours|minutes|a day|days|\d+))\b"
        r"|\b(?:fast|quick|rapid|immediate|instant|lasting|permanent|guaranteed|proven|real)[- ]"
        r"(?:relief|results?|recovery|improvement|response|acting)\b"
        r"|\b(?:relief|results?|better|improvement|a difference) (?:in|within) (?:as little as |just |only "
        r"|a few |a |one |\w+ )?(?:hours?|minutes?|days?|weeks?|\d+)\b"
        r"|\b(?:proven|always|sure) to (?:work|help)\b|\balways works\b"
        r"|\b\d+\s*(?:%|percent)|\bsuccess rate\b"
        r"|\b(?:no|without) side effects\b|\b(?:completely|totally|100 ?%) safe\b",
        IGNORE,
    ),
    "es": re.compile(
        r"\bgarantiz\w*|\bcura(?:r|n|mos|rá|rán|ción)?\b|\bcurad[oa]s?\b|\bfuncionará(?:n)?\b"
        r"|\bfuncionan? (?:rápido|rápidamente|de inmediato|inmediatamente|enseguida|en (?:horas|minutos|días|\d+))"
        r"|\b(?:alivio|resultados?|mejoría|recuperación) (?:rápid[oa]s?|inmediat[oa]s?|instantáne[oa]s?"
        r"|garantizad[oa]s?|duraderos?|permanentes?|comprobad[oa]s?)\b"
        r"|\b(?:alivio|mejoría|mejora|resultados|mejor) en (?:tan solo |solo |pocas |pocos |unas |unos |un |una "
        r"|\w+ )?(?:horas?|minutos?|días?|semanas?|\d+)\b"
        r"|\bse sentirá (?:mejor|bien|aliviad[oa])\b|\bsentirá (?:mejor|alivio)\b"
        r"|\b(?:le|lo|la) (?:ayudará|aliviará|sanará)\b|\bde acción rápida\b"
        r"|\bsiempre funciona\b|\bcomprobado que funciona\b"
        r"|\b\d+\s*(?:%|por ciento)|\btasa de éxito\b"
        r"|\bsin efectos secundarios\b|\b(?:totalmente|completamente|100 ?%) segur[oa]\b",
        IGNORE,
    ),
}


# --- verdicts -------------------------------------------------------------------------------

# Tells a caller they qualify, or do not. "whether you qualify" and "si usted califica" ask,
# they do not tell: a verdict right after whether / if / si is let through.
VERDICTS = {
    "en": re.compile(
        r"\byou(?:'ve| have)? (?:may |might |could |should |would |probably |likely |do(?:n't| not) "
        r"|did(?:n't| not) |will )?(?:qualify|qualified|meet the criteria|pass(?:ed)? (?:the )?(?:screening|prescreen))\b"
        r"|\byou(?:'re| are| may be| might be| could be| would be| will be| seem to be| appear to be"
        r"|'re not| are not| aren't)(?: not)? (?:a |an )?(?:good |great |ideal |strong |perfect |likely |possible "
        r"|suitable )?(?:candidate|eligible|qualified)\b"
        r"|\byou(?:'re| are| have been) (?:approved|accepted|cleared) for\b"
        r"|\byou (?:can(?:not|'t)?|will be able to|are able to|won't be able to) (?:get|receive|have|start|begin) "
        r"(?:treatment|ketamine|infusions?|spravato|esketamine)\b"
        r"|\b(?:in)?eligible\b",
        IGNORE,
    ),
    "es": re.compile(
        r"\b(?:usted )?(?:no )?(?:califica(?:rá|ría)?|cumple (?:con )?los requisitos|reúne los requisitos"
        r"|(?:es|será|sería|parece ser) (?:un |una )?(?:buen[oa]? |posible |probable )?candidat[oa]"
        r"|es apt[oa]|es elegible)\b"
        r"|\b(?:in)?elegible\b|\bha sido (?:aprobad|aceptad)[oa] para\b",
        IGNORE,
    ),
}
ASKING = {"en": re.compile(r"\b(?:whether|if)\s*$", IGNORE), "es": re.compile(r"\bsi\s*$", IGNORE)}
# "X is right for you" is a verdict unless the sentence asks which or whether.
SUITABILITY = {
    "en": re.compile(r"\b(?:is|are|would be|will be)(?: not)? (?:right|a (?:good |great |perfect )?(?:fit|match)"
                     r"|suitable|appropriate|safe) for you\b|\bfits you\b", IGNORE),
    "es": re.compile(r"\b(?:es|será|sería)(?: no)? (?:adecuad[oa]|apropiad[oa]|ideal|indicad[oa]|segur[oa]) "
                     r"para usted\b", IGNORE),
}
QUESTION_WORDS = {"en": re.compile(r"\b(?:whether|if|which|what)\b", IGNORE),
                  "es": re.compile(r"\b(?:si|qué|cuál|cuáles)\b", IGNORE)}


def verdict(text: str, code: str) -> str | None:
    """The words in `text` that would tell a caller whether they qualify, or None."""
    for sentence in sentences(text):
        for match in VERDICTS[code].finditer(sentence):
            if not ASKING[code].search(sentence[:match.start()]):
                return match[0]
        for match in SUITABILITY[code].finditer(sentence):
            if not QUESTION_WORDS[code].search(sentence[:match.start()]):
                return match[0]
    return None


# --- the crisis line ------------------------------------------------------------------------

PRESS = {"en": r"(?:press|push)", "es": r"(?:oprima|presione|pulse)"}
WORD = {"en": "press", "es": "oprima"}


def names_the_crisis_key(text: str, code: str) -> bool:
    return bool(re.search(rf"\b{PRESS[code]} \{{crisis_key\}}", text, IGNORE))


def check_content(
    flow_file: str, top: dict, nodes: dict[str, Node], languages: dict[str, Language], directory: Path,
    problems: list[Problem],
) -> None:
    """Add a problem, named by file, node and text key, for each text that breaks a content rule."""
    used = text_users(nodes)
    start = nodes.get(top["start"])
    main_menu = nodes.get(top["main_menu"])
    if main_menu is not None and main_menu.kind == MENU and not main_menu.crisis_reminder:
        problems.append(Problem(flow_file, main_menu.id,
                                "the main menu must have crisis_reminder: true, so that callers hear the "
                                "crisis key at the main menu, not only in the greeting"))

    for code, language in languages.items():
        file = display(directory / f"{code}.yaml")

        def problem(key: str, message: str) -> None:
            problems.append(Problem(file, used.get(key) or None, f"text '{key}' {message}"))

        spoken = dict(language.texts)
        # A text with unbalanced braces is reported by check_texts; what it names is unknown.
        readable = set()
        for key, text in spoken.items():
            try:
                placeholders(text)
                readable.add(key)
            except ValueError:
                pass
        for key, text in spoken.items():
            for sentence in sentences(text):
                why = approval_problem(sentence, code)
                if why:
                    problem(key, f"{why} ({_quote(sentence)})")
                    break
            promise = PROMISES[code].search(text)
            if promise:
                problem(key, f"promises a result ({_quote(promise[0])}): never promise a cure, relief, "
                             "how well or how fast treatment works, or that it is safe for the caller")
            said = verdict(text, code)
            if said:
                problem(key, f"tells the caller whether they qualify ({_quote(said)}): only a psychiatrist's "
                             "consultation can decide that; say what happens next instead")
        name = language.clinic_name
        if name and (PROMISES[code].search(name) or approval_problem(name, code) or verdict(name, code)):
            problems.append(Problem(file, None, f"'clinic_name' makes a claim the line must not make ({_quote(name)})"))

        # The greeting: 911 for emergencies, the 988 Lifeline, and the key that reaches it.
        if start is not None and start.text in readable:
            key, text = start.text, spoken[start.text]
            if "9 1 1" not in text:
                hint = " (write it with spaces, 9 1 1, so it is read digit by digit)" if "911" in text else ""
                problem(key, f"is the greeting and must tell callers to dial 9 1 1 in an emergency{hint}")
            if "9 8 8" not in text:
                hint = " (write it with spaces, 9 8 8, so it is read digit by digit)" if "988" in text else ""
                problem(key, f"is the greeting and must offer the 9 8 8 Suicide and Crisis Lifeline{hint}")
            if not names_the_crisis_key(text, code):
                problem(key, f"is the greeting and must say \"{WORD[code]} {{crisis_key}}\", so that callers "
                             "know which key reaches the crisis line")
        # Heard at every menu that reminds, and before a caller records a message.
        for key in ("system.crisis_reminder", "callback.message_offer"):
            if key in readable and not names_the_crisis_key(spoken[key], code):
                problem(key, f"must say \"{WORD[code]} {{crisis_key}}\", so that callers know which key "
                             "reaches the crisis line")

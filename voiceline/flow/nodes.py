"""Each node of flow.yaml, from its YAML mapping to a Node: every setting checked, every
problem reported (and the node still built where it can be, so the graph can be checked too)."""

from __future__ import annotations

import re
from typing import Any

from voiceline.flow.files import Problem, did_you_mean, yaml_key
from voiceline.flow.model import (
    CALLBACK,
    CHOICE,
    GOODBYE,
    INFO,
    MENU,
    NODE_KINDS,
    SPEECH,
    TRANSFER,
    YES_NO,
    Node,
    Option,
)

OPTION_KEYS = set("0123456789")
# Names travel in action URLs (voice/params.py takes at most 64 characters) and are stored:
# nodes and fields in 64-character columns, a reason in a 40-character one.
NODE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
REASON = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

FIELDS_BY_KIND: dict[str, set[str]] = {
    MENU: {"text", "options", "bilingual", "crisis_reminder"},
    YES_NO: {"text", "field", "yes", "no", "crisis_reminder"},
    CHOICE: {"text", "field", "options", "crisis_reminder"},
    SPEECH: {"text", "field", "hints", "skip_key", "next"},
    INFO: {"text", "next"},
    TRANSFER: {"text", "reason", "fallback", "closed_text"},
    CALLBACK: {"text"},
    GOODBYE: {"text"},
}
REQUIRED_BY_KIND: dict[str, set[str]] = {
    MENU: {"text", "options"},
    YES_NO: {"text", "field", "yes", "no"},
    CHOICE: {"text", "field", "options"},
    SPEECH: {"text", "field", "next"},
    INFO: {"text", "next"},
    TRANSFER: {"fallback"},
    CALLBACK: set(),
    GOODBYE: {"text"},
}
OPTION_FIELDS = {"label", "next", "value", "lang", "reason"}


REASON_RULE = "'reason' must be a name in lower-case letters, digits and _ (at most 40 characters)"


def _is_reason(value: Any) -> bool:
    return isinstance(value, str) and REASON.match(value) is not None


def parse_node(node_id: str, raw: Any, file: str, problems: list[Problem]) -> Node | None:
    def problem(message: str) -> None:
        problems.append(Problem(file, node_id, message))

    if not NODE_ID.match(node_id):
        problem("node names use lower-case letters, digits and _ only (at most 64 characters)")
    if not isinstance(raw, dict):
        problem("must be a mapping with at least 'kind'")
        return None
    raw = {yaml_key(k): v for k, v in raw.items()}
    kind = raw.get("kind")
    if kind not in NODE_KINDS:
        problem(f"unknown kind {kind!r}{did_you_mean(kind, NODE_KINDS)} (use one of: {', '.join(NODE_KINDS)})")
        return None
    for extra in sorted(set(raw) - FIELDS_BY_KIND[kind] - {"kind"}):
        problem(f"'{extra}' is not used by a {kind} node{did_you_mean(extra, FIELDS_BY_KIND[kind])}")
    for missing in sorted(REQUIRED_BY_KIND[kind] - set(raw)):
        problem(f"a {kind} node needs '{missing}'")

    def text_field(name: str) -> str | None:
        value = raw.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            problem(f"'{name}' must name a text key")
            return None
        return value.strip()

    options: list[Option] = []
    if kind == YES_NO:
        for answer in ("yes", "no"):
            target = raw.get(answer)
            if isinstance(target, str):
                key = "1" if answer == "yes" else "2"
                options.append(Option(key=key, label=f"answer.{answer}", next=target, value=answer))
            elif answer in raw:
                problem(f"'{answer}' must name the node that follows")
    elif kind in (MENU, CHOICE) and "options" in raw:
        raw_options = raw["options"]
        if not isinstance(raw_options, dict) or not raw_options:
            problem("'options' must map keys (\"1\", \"2\", ...) to options")
        else:
            for raw_key, spec in raw_options.items():
                key = yaml_key(raw_key)
                if key not in OPTION_KEYS:
                    problem(f"option key {key!r} must be a single digit 0-9")
                if not isinstance(spec, dict):
                    problem(f"option {key} must be a mapping with 'label' and 'next'")
                    continue
                spec = {yaml_key(k): v for k, v in spec.items()}
                for extra in sorted(set(spec) - OPTION_FIELDS):
                    problem(f"option {key}: unknown setting '{extra}'{did_you_mean(extra, OPTION_FIELDS)}")
                if not isinstance(spec.get("label"), str) or not isinstance(spec.get("next"), str):
                    problem(f"option {key} needs 'label' (a text key) and 'next' (a node)")
                    continue
                if "reason" in spec and not _is_reason(spec["reason"]):
                    problem(f"option {key}: {REASON_RULE}")
                    spec.pop("reason")
                if "lang" in spec and not isinstance(spec["lang"], str):
                    problem(f"option {key}: 'lang' must be a language code such as es")
                    spec.pop("lang")
                value = spec.get("value")
                if isinstance(value, (list, dict)):
                    problem(f"option {key}: 'value' must be one word or number, not a list or mapping")
                    value = None
                if value is not None:
                    value = yaml_key(value)
                if kind == CHOICE and value is None:
                    problem(f"option {key} needs a 'value' to save under '{raw.get('field')}'")
                options.append(
                    Option(
                        key=key,
                        label=spec["label"],
                        next=spec["next"],
                        value=value,
                        lang=spec.get("lang"),
                        reason=spec.get("reason"),
                    )
                )
    skip_key = raw.get("skip_key")
    if skip_key is not None:
        skip_key = yaml_key(skip_key)
        if skip_key not in OPTION_KEYS:
            problem(f"skip_key {skip_key!r} must be a single digit 0-9")
    for flag in ("bilingual", "crisis_reminder"):
        if flag in raw and not isinstance(raw[flag], bool):
            problem(f"'{flag}' must be true or false")
    field = raw.get("field")
    if field is not None and (not isinstance(field, str) or not NODE_ID.match(field)):
        problem("'field' must be a name in lower-case letters, digits and _")
        field = None
    for ref in ("next", "fallback"):
        if ref in raw and not isinstance(raw[ref], str):
            problem(f"'{ref}' must be a name")
    if "reason" in raw and not _is_reason(raw["reason"]):
        problem(REASON_RULE)
    return Node(
        id=node_id,
        kind=kind,
        text=text_field("text"),
        options=tuple(options),
        next=raw.get("next") if isinstance(raw.get("next"), str) else None,
        field=field,
        reason=raw["reason"] if _is_reason(raw.get("reason")) else None,
        fallback=raw.get("fallback") if isinstance(raw.get("fallback"), str) else None,
        hints=text_field("hints"),
        skip_key=skip_key,
        closed_text=text_field("closed_text"),
        bilingual=raw.get("bilingual") is True,
        crisis_reminder=raw.get("crisis_reminder") is True,
    )

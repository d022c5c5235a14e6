"""The call flow as frozen data: nodes, options and the per-language text catalogs."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field

MENU, YES_NO, CHOICE, SPEECH, INFO, TRANSFER, CALLBACK, GOODBYE = (
    "menu", "yes_no", "choice", "speech", "info", "transfer", "callback", "goodbye",
)
NODE_KINDS = (MENU, YES_NO, CHOICE, SPEECH, INFO, TRANSFER, CALLBACK, GOODBYE)
# Nodes that wait for a key press (the crisis key works at every one of them).
INPUT_KINDS = (MENU, YES_NO, CHOICE, SPEECH, CALLBACK)
# Nodes where a call leaves the menus: a person, a callback request, or a goodbye.
TERMINAL_KINDS = (TRANSFER, CALLBACK, GOODBYE)

LANGUAGES = ("en", "es")
STAFF_LANGUAGE = "en"  # what the coordinator hears in the transfer whisper

_formatter = string.Formatter()


def placeholders(template: str) -> set[str]:
    """The {names} a text uses."""
    return {name for _, name, _, _ in _formatter.parse(template) if name}


@dataclass(frozen=True)
class Option:
    key: str
    label: str  # text key
    next: str
    value: str | None = None
    lang: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    text: str | None = None
    options: tuple[Option, ...] = ()
    next: str | None = None
    field: str | None = None
    reason: str | None = None
    fallback: str | None = None
    hints: str | None = None
    skip_key: str | None = None
    # A transfer node: said when patient services cannot take the call (after the hours while
    # closed; after "all of our coordinators are helping other callers" when nobody answered).
    closed_text: str | None = None
    bilingual: bool = False
    crisis_reminder: bool = False

    def option(self, key: str | None) -> Option | None:
        for option in self.options:
            if option.key == key:
                return option
        return None

    @property
    def text_values(self) -> dict[str, str]:
        """What its own text may say besides the global placeholders: the key that skips it."""
        return {"skip_key": self.skip_key} if self.skip_key else {}

    def edges(self) -> list[str]:
        out = [o.next for o in self.options]
        out += [n for n in (self.next, self.fallback) if n]
        return out


@dataclass(frozen=True)
class Language:
    code: str  # "en"
    tag: str  # "en-US": <Say language> and <Gather language>
    voice: str
    speech_model: str
    clinic_name: str
    texts: Mapping[str, str]


@dataclass(frozen=True)
class Flow:
    version: str
    start: str
    main_menu: str
    escalate_to: str
    crisis_key: str
    nodes: Mapping[str, Node]
    languages: Mapping[str, Language]
    fingerprint: str = ""
    files: tuple[str, ...] = field(default=(), compare=False)
    # Pressed at any menu or yes/no question, goes to escalate_to (a person when open), as
    # callers expect of "0"; not announced. None: no such key.
    operator_key: str | None = None

    @property
    def prompts_version(self) -> str:
        """What a call and its callback remember about the prompts the caller heard."""
        return f"{self.version}+{self.fingerprint}" if self.fingerprint else self.version

    @property
    def callback_node(self) -> str:
        return next(n.id for n in self.nodes.values() if n.kind == CALLBACK)

    def text(self, lang: str, text_key: str, /, **values: str) -> str:
        language = self.languages[lang]
        template = language.texts[text_key]
        values.setdefault("clinic_name", language.clinic_name)
        values.setdefault("crisis_key", self.crisis_key)
        return template.format_map(values)

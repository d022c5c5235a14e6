"""Checks across the whole flow: the graph (every name a node, every node reachable, no dead
ends, no loop that never waits for the caller) and the texts (each one there in both languages,
with exactly the placeholders the line can fill)."""

from __future__ import annotations

import string
from collections import deque
from pathlib import Path

from voiceline.flow.catalog import REQUIRED_TEXTS, allowed_placeholders
from voiceline.flow.files import Problem, display
from voiceline.flow.model import (
    CALLBACK,
    CHOICE,
    INFO,
    LANGUAGES,
    MENU,
    SPEECH,
    TERMINAL_KINDS,
    TRANSFER,
    YES_NO,
    Language,
    Node,
    placeholders,
)


def check_graph(flow_file: str, top: dict, nodes: dict[str, Node], problems: list[Problem]) -> None:
    def problem(node: str | None, message: str) -> None:
        problems.append(Problem(flow_file, node, message))

    crisis_key = top["crisis_key"]
    operator_key = top.get("operator_key")
    missing = False  # a name that is not a node: the walks below cannot run
    for node in nodes.values():
        for target in node.edges():
            if target not in nodes:
                problem(node.id, f"leads to '{target}', which does not exist")
                missing = True
        for option in node.options:
            if option.key == crisis_key:
                problem(node.id, f"option {option.key} is the crisis key; choose another key")
            elif option.key == operator_key:
                problem(node.id, f"option {option.key} is the operator key; choose another key")
            if option.lang is not None and option.lang not in LANGUAGES:
                problem(node.id, f"option {option.key}: unknown language {option.lang!r}")
        if node.skip_key == crisis_key:
            problem(node.id, "skip_key is the crisis key; choose another key")
        if node.skip_key is not None and node.skip_key == operator_key:
            problem(node.id, "skip_key is the operator key; choose another key")
        if node.kind == TRANSFER and node.fallback in nodes and nodes[node.fallback].kind != CALLBACK:
            problem(node.id, f"fallback '{node.fallback}' must be a callback node")
        if node.bilingual and (node.id != top["start"] or any(o.lang is None for o in node.options)):
            problem(node.id, "only the start node can be bilingual, and each option needs 'lang'")
        if node.kind in (MENU, CHOICE, YES_NO):
            keys = [o.key for o in node.options]
            if len(keys) != len(set(keys)):
                problem(node.id, "the same key is used for two options")

    for name in ("start", "main_menu", "escalate_to"):
        if top[name] not in nodes:
            problem(None, f"'{name}' names '{top[name]}', which is not a node")
            missing = True
    if missing:
        return
    if nodes[top["escalate_to"]].kind not in (TRANSFER, CALLBACK):
        problem(top["escalate_to"], "escalate_to must be a transfer or callback node")
    if nodes[top["main_menu"]].kind != MENU:
        problem(top["main_menu"], "main_menu must be a menu node")
    if not any(n.kind == CALLBACK for n in nodes.values()):
        problem(None, "the flow needs a callback node")

    # Reachable from the start (escalation is reachable from every input node).
    seen = {top["start"], top["escalate_to"]}
    queue = deque(seen)
    while queue:
        for target in nodes[queue.popleft()].edges():
            if target not in seen:
                seen.add(target)
                queue.append(target)
    for node_id in nodes:
        if node_id not in seen:
            problem(node_id, "cannot be reached from the start")

    # Every node must lead somewhere a caller can leave the menus (no dead ends).
    leads_out = {n.id for n in nodes.values() if n.kind in TERMINAL_KINDS}
    changed = True
    while changed:
        changed = False
        for node in nodes.values():
            if node.id not in leads_out and any(t in leads_out for t in node.edges()):
                leads_out.add(node.id)
                changed = True
    for node in nodes.values():
        if node.id not in leads_out:
            problem(node.id, "is a dead end: no path from it reaches patient services, a callback or a goodbye")

    # Info nodes play straight through; a loop of them would never wait for the caller.
    for node in nodes.values():
        walked: list[str] = []
        current = node
        while current.kind == INFO:
            if current.id in walked:
                problem(node.id, f"info nodes loop without asking anything: {' -> '.join(walked)}")
                break
            walked.append(current.id)
            current = nodes[current.next]


def text_users(nodes: dict[str, Node]) -> dict[str, str]:
    """Text key -> the first node that speaks it ("" for a reason the whisper reads)."""
    used: dict[str, str] = {}
    reasons = {"general", "missed_call"}
    for node in nodes.values():
        for key in [node.text, node.hints, node.closed_text, *(o.label for o in node.options)]:
            if key:
                used.setdefault(key, node.id)
        reasons.update(r for r in [node.reason, *(o.reason for o in node.options)] if r)
    for reason in reasons:
        used.setdefault(f"reason.{reason}", "")
    return used


def check_texts(
    flow_file: str, nodes: dict[str, Node], languages: dict[str, Language], directory: Path,
    problems: list[Problem],
) -> None:
    used = text_users(nodes)
    # A speech node that can be skipped says its key: {skip_key}, never a digit written in
    # the text that a change of skip_key in flow.yaml would leave behind.
    skippable = {node.text for node in nodes.values() if node.kind == SPEECH and node.skip_key and node.text}
    # ...and only a text no other node speaks: that node would have no key to fill in.
    others = {node.text for node in nodes.values() if node.text and not (node.kind == SPEECH and node.skip_key)}
    node_placeholders = {key: frozenset({"skip_key"}) for key in skippable - others}

    for code, language in languages.items():
        file = display(directory / f"{code}.yaml")
        for key, node_id in sorted(used.items()):
            if key not in language.texts:
                problems.append(Problem(file, node_id or None, f"text '{key}' is missing"))
        for key in REQUIRED_TEXTS:
            if key not in language.texts:
                problems.append(Problem(file, None, f"text '{key}' is missing (the line speaks it itself)"))
        for key, template in language.texts.items():
            try:
                names = placeholders(template)
            except ValueError as exc:
                problems.append(Problem(file, None, f"text '{key}' has unbalanced braces ({exc})"))
                continue
            if any(name == "" for _, name, _, _ in string.Formatter().parse(template)):
                problems.append(
                    Problem(file, used.get(key) or None,
                            f"text '{key}' has empty braces {{}}: put a name inside, "
                            "such as {clinic_name}, or remove them")
                )
            own = node_placeholders.get(key, frozenset())
            unknown = names - allowed_placeholders(key) - own
            if unknown:
                problems.append(
                    Problem(file, used.get(key) or None,
                            f"text '{key}' uses {{{', '.join(sorted(unknown))}}}, which the line cannot fill here")
                )
            missing = (REQUIRED_TEXTS.get(key, frozenset()) | own) - names
            if missing:
                problems.append(
                    Problem(file, used.get(key) or None,
                            f"text '{key}' must use {{{'}, {'.join(sorted(missing))}}}: the line fills it in "
                            "(a key to press, a number read back, the hours), and without it the caller "
                            "would not hear it")
                )
    if len(languages) == len(LANGUAGES):
        en, es = (set(languages[c].texts) for c in LANGUAGES)
        for key in sorted(en - es):
            problems.append(Problem(display(directory / "es.yaml"), None, f"text '{key}' is in en.yaml but not here"))
        for key in sorted(es - en):
            problems.append(Problem(display(directory / "en.yaml"), None, f"text '{key}' is in es.yaml but not here"))

"""Load prompts/flow.yaml, en.yaml and es.yaml into a Flow, and check it thoroughly.

A clinic manager edits these files; a mistake must be caught before a caller hears it.
`load_flow` collects every problem it finds (file, node, what is wrong) and raises
FlowError with all of them, so one run of `voiceline flow check` shows the whole list.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import string
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from voiceline.flow.catalog import REQUIRED_TEXTS, allowed_placeholders
from voiceline.flow.model import (
    CALLBACK,
    CHOICE,
    GOODBYE,
    INFO,
    LANGUAGES,
    MENU,
    NODE_KINDS,
    SPEECH,
    TERMINAL_KINDS,
    TRANSFER,
    YES_NO,
    Flow,
    Language,
    Node,
    Option,
    placeholders,
)

FLOW_FILE = "flow.yaml"
OPTION_KEYS = set("0123456789")
LANGUAGE_TAG = re.compile(r"^[a-z]{2}-[A-Z]{2}$")
# Names travel in action URLs (voice/params.py takes at most 64 characters) and are stored:
# nodes and fields in 64-character columns, a reason in a 40-character one.
NODE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
REASON = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# A call stores "<version>+<8-character fingerprint>" in a 40-character column.
VERSION_MAX = 40 - 9

FIELDS_BY_KIND: dict[str, set[str]] = {
    MENU: {"text", "options", "bilingual", "crisis_reminder"},
    YES_NO: {"text", "field", "yes", "no", "crisis_reminder"},
    CHOICE: {"text", "field", "options", "crisis_reminder"},
    SPEECH: {"text", "field", "hints", "skip_key", "next"},
    INFO: {"text", "next"},
    TRANSFER: {"text", "reason", "fallback"},
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


@dataclass(frozen=True)
class Problem:
    file: str
    node: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: node '{self.node}'" if self.node else self.file
        return f"{where}: {self.message}"


class FlowError(Exception):
    """The prompts are broken; `problems` names each file, node and problem."""

    def __init__(self, problems: list[Problem], directory: Path | None = None):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        where = _display(directory) if directory is not None else "prompts/"
        super().__init__(f"the call flow in {where} has {len(problems)} problem(s):\n{lines}")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _did_you_mean(word: Any, choices) -> str:
    """" — did you mean 'text'?" for a likely typo, else ""."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _yaml_key(key: Any) -> str:
    """YAML 1.1 reads an unquoted yes/no as a boolean; take it to mean the word."""
    if key is True:
        return "yes"
    if key is False:
        return "no"
    return str(key)


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a key given twice in one mapping is an error: YAML keeps
    the last one without a word, so a pasted second `insurance:` would replace the first."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: the parent merges it
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                continue  # not a plain key: the parent reports what is wrong with it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"the key {key!r} is given twice",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path, problems: list[Problem]) -> dict | None:
    name = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(Problem(name, None, "file is missing"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(name, None, f"cannot be read ({exc})"))
        return None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problems.append(Problem(name, None, f"is not valid YAML{at}: {getattr(exc, 'problem', exc)}"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(name, None, "must be a mapping of settings"))
        return None
    return data


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{_yaml_key(key)}" if prefix else _yaml_key(key), inner, out)
    else:
        out[prefix] = value


def _load_language(directory: Path, code: str, problems: list[Problem]) -> Language | None:
    path = directory / f"{code}.yaml"
    name = _display(path)
    data = _read_yaml(path, problems)
    if data is None:
        return None
    # A problem in these settings is reported but still lets the texts be checked (the
    # problem alone stops load_flow from returning this Language).
    header: dict[str, str] = {}
    for key in ("language", "voice", "speech_model", "clinic_name"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            problems.append(Problem(name, None, f"'{key}' is missing or empty"))
        header[key] = data[key].strip() if isinstance(data.get(key), str) else ""
    tag = data.get("language")
    if isinstance(tag, str) and not LANGUAGE_TAG.match(tag.strip()):
        problems.append(
            Problem(name, None, f"'language' must be a full tag such as en-US or es-US, got {tag!r}")
        )
    ok = True
    raw_texts = data.get("texts")
    if not isinstance(raw_texts, dict):
        problems.append(Problem(name, None, "'texts' is missing or is not a mapping"))
        return None
    flat: dict[str, Any] = {}
    _flatten("", raw_texts, flat)
    texts: dict[str, str] = {}
    for key, value in flat.items():
        if not isinstance(value, str) or not value.strip():
            problems.append(Problem(name, None, f"text '{key}' is empty or not text"))
            ok = False
            continue
        texts[key] = " ".join(value.split())
    if not ok:
        return None
    return Language(
        code=code,
        tag=header["language"],
        voice=header["voice"],
        speech_model=header["speech_model"],
        clinic_name=header["clinic_name"],
        texts=texts,
    )


REASON_RULE = "'reason' must be a name in lower-case letters, digits and _ (at most 40 characters)"


def _is_reason(value: Any) -> bool:
    return isinstance(value, str) and REASON.match(value) is not None


def _parse_node(node_id: str, raw: Any, file: str, problems: list[Problem]) -> Node | None:
    def problem(message: str) -> None:
        problems.append(Problem(file, node_id, message))

    if not NODE_ID.match(node_id):
        problem("node names use lower-case letters, digits and _ only (at most 64 characters)")
    if not isinstance(raw, dict):
        problem("must be a mapping with at least 'kind'")
        return None
    raw = {_yaml_key(k): v for k, v in raw.items()}
    kind = raw.get("kind")
    if kind not in NODE_KINDS:
        problem(f"unknown kind {kind!r}{_did_you_mean(kind, NODE_KINDS)} (use one of: {', '.join(NODE_KINDS)})")
        return None
    for extra in sorted(set(raw) - FIELDS_BY_KIND[kind] - {"kind"}):
        problem(f"'{extra}' is not used by a {kind} node{_did_you_mean(extra, FIELDS_BY_KIND[kind])}")
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
                key = _yaml_key(raw_key)
                if key not in OPTION_KEYS:
                    problem(f"option key {key!r} must be a single digit 0-9")
                if not isinstance(spec, dict):
                    problem(f"option {key} must be a mapping with 'label' and 'next'")
                    continue
                spec = {_yaml_key(k): v for k, v in spec.items()}
                for extra in sorted(set(spec) - OPTION_FIELDS):
                    problem(f"option {key}: unknown setting '{extra}'{_did_you_mean(extra, OPTION_FIELDS)}")
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
                    value = _yaml_key(value)
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
        skip_key = _yaml_key(skip_key)
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
        bilingual=raw.get("bilingual") is True,
        crisis_reminder=raw.get("crisis_reminder") is True,
    )


def _check_graph(flow_file: str, top: dict, nodes: dict[str, Node], problems: list[Problem]) -> None:
    def problem(node: str | None, message: str) -> None:
        problems.append(Problem(flow_file, node, message))

    crisis_key = top["crisis_key"]
    missing = False  # a name that is not a node: the walks below cannot run
    for node in nodes.values():
        for target in node.edges():
            if target not in nodes:
                problem(node.id, f"leads to '{target}', which does not exist")
                missing = True
        for option in node.options:
            if option.key == crisis_key:
                problem(node.id, f"option {option.key} is the crisis key; choose another key")
            if option.lang is not None and option.lang not in LANGUAGES:
                problem(node.id, f"option {option.key}: unknown language {option.lang!r}")
        if node.skip_key == crisis_key:
            problem(node.id, "skip_key is the crisis key; choose another key")
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


def _check_texts(
    flow_file: str, nodes: dict[str, Node], languages: dict[str, Language], directory: Path,
    problems: list[Problem],
) -> None:
    used: dict[str, str] = {}  # text key -> node that uses it
    # A speech node that can be skipped says its key: {skip_key}, never a digit written in
    # the text that a change of skip_key in flow.yaml would leave behind.
    skippable = {node.text for node in nodes.values() if node.kind == SPEECH and node.skip_key and node.text}
    # ...and only a text no other node speaks: that node would have no key to fill in.
    others = {node.text for node in nodes.values() if node.text and not (node.kind == SPEECH and node.skip_key)}
    node_placeholders = {key: frozenset({"skip_key"}) for key in skippable - others}
    reasons = {"general", "missed_call"}
    for node in nodes.values():
        for key in [node.text, node.hints, *(o.label for o in node.options)]:
            if key:
                used.setdefault(key, node.id)
        reasons.update(r for r in [node.reason, *(o.reason for o in node.options)] if r)
    for reason in reasons:
        used.setdefault(f"reason.{reason}", "")

    for code, language in languages.items():
        file = _display(directory / f"{code}.yaml")
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
            problems.append(Problem(_display(directory / "es.yaml"), None, f"text '{key}' is in en.yaml but not here"))
        for key in sorted(es - en):
            problems.append(Problem(_display(directory / "en.yaml"), None, f"text '{key}' is in es.yaml but not here"))


def load_flow(directory: Path) -> Flow:
    """Read and check the prompts in `directory`; raise FlowError listing every problem."""
    directory = Path(directory)
    problems: list[Problem] = []
    flow_path = directory / FLOW_FILE
    flow_file = _display(flow_path)
    top = _read_yaml(flow_path, problems)
    languages = {code: lang for code in LANGUAGES if (lang := _load_language(directory, code, problems))}
    if top is None:
        raise FlowError(problems, directory)

    for key in ("version", "start", "main_menu", "escalate_to", "crisis_key"):
        if key not in top or top[key] is None or not str(top[key]).strip():
            problems.append(Problem(flow_file, None, f"'{key}' is missing"))
    raw_nodes = top.get("nodes")
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        problems.append(Problem(flow_file, None, "'nodes' is missing or empty"))
    if problems and (not isinstance(raw_nodes, dict) or any(p.node is None and p.file == flow_file for p in problems)):
        raise FlowError(problems, directory)
    top = {k: _yaml_key(v) if k in ("start", "main_menu", "escalate_to", "crisis_key", "version") else v
           for k, v in top.items()}
    if len(top["version"]) > VERSION_MAX:
        problems.append(Problem(flow_file, None, f"'version' is at most {VERSION_MAX} characters (each call "
                                                 f"stores it with the files' fingerprint), got {len(top['version'])}"))
    if top["crisis_key"] not in OPTION_KEYS:
        problems.append(Problem(flow_file, None, f"crisis_key must be a single digit, got {top['crisis_key']!r}"))

    nodes: dict[str, Node] = {}
    for raw_id, raw in raw_nodes.items():
        node = _parse_node(str(raw_id), raw, flow_file, problems)
        if node is not None:
            nodes[node.id] = node
    if not any(p.file == flow_file for p in problems):
        _check_graph(flow_file, top, nodes, problems)
    if languages:
        _check_texts(flow_file, nodes, languages, directory, problems)
    if problems:
        raise FlowError(problems, directory)

    digest = hashlib.sha256()
    files = [FLOW_FILE] + [f"{code}.yaml" for code in LANGUAGES]
    for name in files:
        digest.update((directory / name).read_bytes())
    return Flow(
        version=str(top["version"]),
        start=top["start"],
        main_menu=top["main_menu"],
        escalate_to=top["escalate_to"],
        crisis_key=top["crisis_key"],
        nodes=nodes,
        languages=languages,
        fingerprint=digest.hexdigest()[:8],
        files=tuple(files),
    )

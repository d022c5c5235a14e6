"""Reading the prompt files: YAML that refuses a key given twice, and each problem named by
file (and node) so that a clinic manager can find it."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from voiceline.flow.model import Language

LANGUAGE_TAG = re.compile(r"^[a-z]{2}-[A-Z]{2}$")


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
        where = display(directory) if directory is not None else "prompts/"
        super().__init__(f"the call flow in {where} has {len(problems)} problem(s):\n{lines}")


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def did_you_mean(word: Any, choices) -> str:
    """" — did you mean 'text'?" for a likely typo, else ""."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def yaml_key(key: Any) -> str:
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


def read_yaml(path: Path, problems: list[Problem]) -> dict | None:
    name = display(path)
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
            _flatten(f"{prefix}.{yaml_key(key)}" if prefix else yaml_key(key), inner, out)
    else:
        out[prefix] = value


def load_language(directory: Path, code: str, problems: list[Problem]) -> Language | None:
    path = directory / f"{code}.yaml"
    name = display(path)
    data = read_yaml(path, problems)
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

"""The prompts in prompts/ load, and every mistake a clinic manager can make in them is
caught before a caller hears it: by `voiceline flow check`, and again at start-up.

Each broken case copies the real prompts into tmp_path and changes one thing, so the test
shows the problem a manager would see, named by file, node and what is wrong.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from tests.conftest import PRODUCTION_SETTINGS, base_config
from voiceline import create_app
from voiceline.cli import cli
from voiceline.extensions import db
from voiceline.flow import guards
from voiceline.flow.model import LANGUAGES
from voiceline.flow.prompts import FlowError, Problem, load_flow
from voiceline.models import CallEvent

REPO = Path(__file__).resolve().parent.parent
PROMPTS = REPO / "prompts"
VENV_BIN = Path(sys.executable).parent


# --- helpers -------------------------------------------------------------------------------


def copy_prompts(tmp_path: Path) -> Path:
    target = tmp_path / "prompts"
    shutil.copytree(PROMPTS, target)
    return target


def read(directory: Path, name: str) -> dict:
    return yaml.safe_load((directory / name).read_text(encoding="utf-8"))


def write(directory: Path, name: str, data: dict) -> None:
    (directory / name).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                  encoding="utf-8")


def edit(directory: Path, name: str, change) -> None:
    """Load a YAML file, let `change(data)` edit it in place, write it back."""
    data = read(directory, name)
    change(data)
    write(directory, name, data)


def replace_text(directory: Path, name: str, old: str, new: str) -> str:
    """Edit a file as text (keeps comments and layout); returns the new text."""
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} should occur once in {name}"
    text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return text


def problems_in(directory: Path) -> list[Problem]:
    with pytest.raises(FlowError) as caught:
        load_flow(directory)
    return caught.value.problems


def described(problems: list[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


def find(problems: list[Problem], file: str, node: str | None, *words: str) -> Problem:
    """The problem in `file` (by name) at `node` whose message has every word in `words`."""
    for p in problems:
        if Path(p.file).name == file and p.node == node and all(
            w.lower() in p.message.lower() for w in words
        ):
            return p
    raise AssertionError(f"no problem in {file}, node {node!r}, with {words}; got:\n{described(problems)}")


def only(problems: list[Problem], file: str, node: str | None, *words: str) -> Problem:
    """Like find(), and nothing else was reported (one mistake, one problem)."""
    problem = find(problems, file, node, *words)
    assert problems == [problem], described(problems)
    return problem


def flat_texts(data: dict) -> dict[str, object]:
    out: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            out[prefix] = value

    walk("", data["texts"])
    return out


# --- 1. the real prompts ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def flow():
    return load_flow(PROMPTS)


def test_real_prompts_load(flow):
    assert flow.start in flow.nodes
    assert flow.nodes[flow.main_menu].kind == "menu"
    assert set(flow.languages) == set(LANGUAGES)
    assert flow.languages["en"].tag == "en-US"
    assert flow.languages["es"].tag == "es-US"


def test_en_and_es_have_the_same_text_keys():
    en = flat_texts(read(PROMPTS, "en.yaml"))
    es = flat_texts(read(PROMPTS, "es.yaml"))
    assert sorted(set(en) - set(es)) == [], "in en.yaml but not in es.yaml"
    assert sorted(set(es) - set(en)) == [], "in es.yaml but not in en.yaml"


@pytest.mark.parametrize("code", LANGUAGES)
def test_no_text_is_empty(code):
    for key, value in flat_texts(read(PROMPTS, f"{code}.yaml")).items():
        assert isinstance(value, str) and value.strip(), f"{code}.yaml: text '{key}' is empty"


def test_every_node_is_reachable_from_the_start(flow):
    """Walked here without the validator, and without counting escalation as a way in."""
    seen = {flow.start}
    queue = deque(seen)
    while queue:
        for target in flow.nodes[queue.popleft()].edges():
            assert target in flow.nodes, f"{target} does not exist"
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert sorted(set(flow.nodes) - seen) == []


def test_every_text_a_node_names_exists_in_both_languages(flow):
    for node in flow.nodes.values():
        for key in [node.text, node.hints, *(o.label for o in node.options)]:
            if key:
                for code in LANGUAGES:
                    assert key in flow.languages[code].texts, f"{code}: {key} (node {node.id})"


# --- 2. broken prompts ------------------------------------------------------------------------


def test_flow_yaml_missing(tmp_path):
    prompts = copy_prompts(tmp_path)
    (prompts / "flow.yaml").unlink()
    problem = only(problems_in(prompts), "flow.yaml", None, "missing")
    assert str(problem) == f"{prompts / 'flow.yaml'}: file is missing"


def test_yaml_syntax_error_gives_the_line(tmp_path):
    prompts = copy_prompts(tmp_path)
    # A colon inside a value: the commonest YAML slip when editing by hand.
    text = replace_text(prompts, "flow.yaml", "    text: prescreen.intro\n",
                        "    text: prescreen.intro: please\n")
    line = text.splitlines().index("    text: prescreen.intro: please") + 1
    problem = only(problems_in(prompts), "flow.yaml", None, "not valid YAML", f"line {line}")
    assert f"line {line}," in problem.message


def test_yaml_syntax_error_in_a_language_file_gives_the_file_and_line(tmp_path):
    prompts = copy_prompts(tmp_path)
    text = replace_text(prompts, "es.yaml", "    age: ¿Tiene 18 años o más?\n",
                        "    age: ¿Tiene 18 años: o más?\n")
    line = text.splitlines().index("    age: ¿Tiene 18 años: o más?") + 1
    problems = problems_in(prompts)
    find(problems, "es.yaml", None, "not valid YAML", f"line {line}")
    assert {Path(p.file).name for p in problems} == {"es.yaml"}, described(problems)


def test_unknown_node_kind(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml", lambda f: f["nodes"]["prescreen_intro"].update(kind="infos"))
    problem = only(problems_in(prompts), "flow.yaml", "prescreen_intro", "unknown kind", "'infos'")
    assert "info" in problem.message  # lists the kinds that do exist


def test_option_leading_to_a_missing_node(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml",
         lambda f: f["nodes"]["main_menu"]["options"]["3"].update(next="what_to_expct"))
    only(problems_in(prompts), "flow.yaml", "main_menu", "'what_to_expct'", "does not exist")


def test_unreachable_node(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml",
         lambda f: f["nodes"].update(old_goodbye={"kind": "goodbye", "text": "system.goodbye"}))
    only(problems_in(prompts), "flow.yaml", "old_goodbye", "cannot be reached")


def test_menus_that_only_lead_to_each_other_are_a_dead_end(tmp_path):
    prompts = copy_prompts(tmp_path)

    def change(f):
        nodes = f["nodes"]
        nodes["main_menu"]["options"]["7"] = {"label": "main_menu.what_to_expect", "next": "loop_a"}
        nodes["loop_a"] = {"kind": "menu", "text": "what_to_expect.next",
                           "options": {"1": {"label": "what_to_expect.again", "next": "loop_b"}}}
        nodes["loop_b"] = {"kind": "menu", "text": "what_to_expect.next",
                           "options": {"1": {"label": "what_to_expect.again", "next": "loop_a"},
                                       "2": {"label": "main_menu.repeat", "next": "loop_b"}}}

    edit(prompts, "flow.yaml", change)
    problems = problems_in(prompts)
    find(problems, "flow.yaml", "loop_a", "dead end")
    find(problems, "flow.yaml", "loop_b", "dead end")
    assert len(problems) == 2, described(problems)


def test_info_nodes_that_loop(tmp_path):
    prompts = copy_prompts(tmp_path)

    def change(f):
        nodes = f["nodes"]
        nodes["main_menu"]["options"]["7"] = {"label": "main_menu.what_to_expect", "next": "info_a"}
        nodes["info_a"] = {"kind": "info", "text": "what_to_expect.info", "next": "info_b"}
        nodes["info_b"] = {"kind": "info", "text": "insurance.cost", "next": "info_a"}

    edit(prompts, "flow.yaml", change)
    problems = problems_in(prompts)
    loop = find(problems, "flow.yaml", "info_a", "info nodes loop")
    assert "info_a" in loop.message and "info_b" in loop.message
    find(problems, "flow.yaml", "info_b", "info nodes loop")
    assert {p.node for p in problems} == {"info_a", "info_b"}, described(problems)


def test_text_missing_in_es_only(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "es.yaml", lambda d: d["texts"]["prescreen"].pop("age"))
    problems = problems_in(prompts)
    problem = find(problems, "es.yaml", "prescreen_age", "'prescreen.age'", "missing")
    assert str(problem).startswith(str(prompts / "es.yaml"))
    assert all(Path(p.file).name == "es.yaml" for p in problems), described(problems)
    assert all("prescreen.age" in p.message for p in problems), described(problems)


def test_unknown_placeholder_in_a_node_text(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "en.yaml", lambda d: d["texts"]["prescreen"].update(
        done="Thank you, {caller_name}. We've noted your answers."))
    only(problems_in(prompts), "en.yaml", "prescreen_done", "'prescreen.done'", "{caller_name}")


def test_unknown_placeholder_in_a_system_text(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "es.yaml", lambda d: d["texts"]["system"].update(
        transfer_closed="Servicios al paciente está cerrado. {horario}"))
    problems = problems_in(prompts)
    find(problems, "es.yaml", None, "'system.transfer_closed'", "uses {horario}")
    find(problems, "es.yaml", None, "'system.transfer_closed'", "must use {hours}")  # the misspelt one
    assert len(problems) == 2, described(problems)


@pytest.mark.parametrize(("key", "text", "missing"), [
    ("option", "{label}.", "{key}"),  # a menu option with no "press N"
    ("transfer_closed", "Patient services is closed right now.", "{hours}"),
])
def test_a_system_text_without_what_the_line_fills_in(tmp_path, key, text, missing):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "en.yaml", lambda d: d["texts"]["system"].update({key: text}))
    only(problems_in(prompts), "en.yaml", None, f"'system.{key}'", f"must use {missing}")


def test_the_callback_confirmation_must_read_back_the_number(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "es.yaml", lambda d: d["texts"]["callback"].update(confirmation="Gracias. Le llamaremos {when}."))
    only(problems_in(prompts), "es.yaml", None, "'callback.confirmation'", "must use {last4}")


def test_a_skippable_question_says_its_skip_key(tmp_path):
    """A digit written into the text would be left behind when skip_key changes in flow.yaml."""
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "en.yaml", "To skip this question, press {skip_key}.", "To skip this question, press 1.")
    only(problems_in(prompts), "en.yaml", "insurance_carrier", "'insurance.carrier'", "must use {skip_key}")


def test_the_skip_key_is_read_from_the_flow(tmp_path, make_app):
    from tests.phone import Phone

    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "flow.yaml", 'skip_key: "1"', 'skip_key: "3"')
    phone = Phone(make_app(PROMPTS_DIR=str(prompts)))
    phone.call()
    phone.press_through("1", "2", "1", "1")  # English, insurance, uses insurance, commercial
    assert "To skip this question, press 3." in phone.text()
    spanish = Phone(phone.app)
    spanish.call()
    spanish.press_through("2", "2", "1", "1")
    assert "Para omitir esta pregunta, oprima 3." in spanish.text()
    phone.press("5")  # not the skip key: the question is asked again, its key still filled in
    assert phone.spoken()[0] == "Sorry, I didn't catch that."
    assert "To skip this question, press 3." in phone.text()
    # ...and the line still listens for the spoken answer it asks for.
    gather = phone.gather()
    assert gather.get("input") == "dtmf speech" and "Aetna" in gather.get("hints")
    phone.say("Cigna")
    with phone.app.app_context():
        carriers = db.session.scalars(sa.select(CallEvent.value).where(
            CallEvent.call_sid == phone.call_sid, CallEvent.field == "carrier")).all()
    assert carriers == ["Cigna"]


def test_skip_key_only_in_a_text_no_other_node_speaks(tmp_path):
    prompts = copy_prompts(tmp_path)
    # An info node that reuses the carrier question's text has no skip key to fill in.
    replace_text(prompts, "flow.yaml", "  prescreen_intro:\n", "  carrier_again:\n    kind: info\n"
                 "    text: insurance.carrier\n    next: main_menu\n  prescreen_intro:\n")
    replace_text(prompts, "flow.yaml", '"6": {label: main_menu.repeat, next: main_menu}',
                 '"6": {label: main_menu.repeat, next: carrier_again}')
    problems = problems_in(prompts)
    find(problems, "en.yaml", "carrier_again", "'insurance.carrier'", "uses {skip_key}", "cannot fill")


def test_placeholder_allowed_in_one_text_but_not_another(tmp_path):
    """{hours} is filled in for transfer_closed, not for the goodbye."""
    prompts = copy_prompts(tmp_path)
    edit(prompts, "en.yaml", lambda d: d["texts"]["system"].update(
        goodbye="Thank you for calling. Our hours are {hours}. Goodbye."))
    only(problems_in(prompts), "en.yaml", None, "'system.goodbye'", "{hours}")


@pytest.mark.parametrize("broken", ["Thank you {} for calling.", "Thank you {0} for calling."])
def test_empty_or_numbered_braces_are_refused(tmp_path, broken):
    """Either would fail only when the line tries to speak the text, in the middle of a call."""
    prompts = copy_prompts(tmp_path)
    edit(prompts, "en.yaml", lambda d: d["texts"]["prescreen"].update(done=broken))
    find(problems_in(prompts), "en.yaml", "prescreen_done", "'prescreen.done'")


def test_unbalanced_braces(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "en.yaml", lambda d: d["texts"]["system"].update(
        crisis_reminder="If you are in crisis, press {crisis_key at any time."))
    only(problems_in(prompts), "en.yaml", None, "'system.crisis_reminder'", "braces")


def test_option_key_equal_to_the_crisis_key(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml", lambda f: f["nodes"]["main_menu"]["options"].update(
        {"9": {"label": "main_menu.repeat", "next": "main_menu"}}))
    only(problems_in(prompts), "flow.yaml", "main_menu", "option 9", "crisis key")


def test_skip_key_equal_to_the_crisis_key(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml", lambda f: f["nodes"]["insurance_carrier"].update(skip_key="9"))
    only(problems_in(prompts), "flow.yaml", "insurance_carrier", "skip_key", "crisis key")


@pytest.mark.parametrize("key", ["*", "#", "10", "a"])
def test_option_key_that_is_not_one_digit(tmp_path, key):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml", lambda f: f["nodes"]["insurance_plan"]["options"].update(
        {key: {"label": "insurance.plan_other", "value": "other_2", "next": "insurance_carrier"}}))
    only(problems_in(prompts), "flow.yaml", "insurance_plan", f"option key {key!r}", "single digit")


def test_same_key_twice_in_yaml_is_not_silently_merged(tmp_path):
    """YAML keeps the last of two equal keys; a quoted and an unquoted 1 are two keys."""
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "flow.yaml", '      "6": {label: main_menu.repeat, next: main_menu}\n',
                 '      "6": {label: main_menu.repeat, next: main_menu}\n'
                 '      6: {label: main_menu.patient_services, next: patient_services}\n')
    only(problems_in(prompts), "flow.yaml", "main_menu", "same key")


def test_a_key_given_twice_in_a_language_file_names_the_line(tmp_path):
    """A pasted second `insurance:` would silently replace the first."""
    prompts = copy_prompts(tmp_path)
    text = replace_text(prompts, "en.yaml", "  what_to_expect:\n", "  insurance:\n    cost: Free.\n  what_to_expect:\n")
    line = text.splitlines().index("  insurance:", text.splitlines().index("  insurance:") + 1) + 1
    problem = only(problems_in(prompts), "en.yaml", None, "given twice", "insurance")
    assert f"line {line}," in problem.message


def test_yaml_merge_keys_still_work(tmp_path):
    """`<<: *anchor` is one key that YAML merges, not a key given twice."""
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "flow.yaml", "  prescreen_age:\n    kind: yes_no\n",
                 "  prescreen_age: &yes_no_question\n    kind: yes_no\n")
    replace_text(prompts, "flow.yaml", "  prescreen_diagnosis:\n    kind: yes_no\n",
                 "  prescreen_diagnosis:\n    <<: *yes_no_question\n    kind: yes_no\n")
    flow = load_flow(prompts)
    assert flow.nodes["prescreen_diagnosis"].field == "mood_disorder_diagnosis"  # its own, over the merged one


def test_a_node_given_twice_names_the_line(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "flow.yaml", "  prescreen_intro:\n", "  goodbye_twice:\n    kind: goodbye\n    text: system.goodbye\n"
                 "  goodbye_twice:\n    kind: goodbye\n    text: system.goodbye\n  prescreen_intro:\n")
    find(problems_in(prompts), "flow.yaml", None, "given twice", "goodbye_twice")


@pytest.mark.parametrize("reason", ["a" * 41, "Billing-Question", "[candidacy]"])
def test_a_reason_calls_cannot_carry_or_store(tmp_path, reason):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "flow.yaml", "reason: insurance, next: insurance_coverage",
                 f"reason: {reason}, next: insurance_coverage")
    find(problems_in(prompts), "flow.yaml", "main_menu", "option 2", "at most 40 characters")


def test_a_node_name_too_long_for_an_action_url(tmp_path):
    prompts = copy_prompts(tmp_path)
    long_name = "n" * 65
    replace_text(prompts, "flow.yaml", "  main_menu:\n    kind: menu", f"  {long_name}:\n    kind: menu")
    find(problems_in(prompts), "flow.yaml", long_name, "at most 64 characters")


def test_a_version_too_long_to_store(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml", lambda data: data.update(version="2026-11-27 after the big review of the menus"))
    find(problems_in(prompts), "flow.yaml", None, "'version' is at most 31 characters")


def test_bilingual_on_a_node_other_than_the_start(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml", lambda f: f["nodes"]["main_menu"].update(bilingual=True))
    only(problems_in(prompts), "flow.yaml", "main_menu", "bilingual", "start node")


def test_language_tag_without_region(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "es.yaml", lambda d: d.update(language="es"))
    problem = only(problems_in(prompts), "es.yaml", None, "'language'", "es-US", "'es'")
    assert str(problem) == f"{prompts / 'es.yaml'}: {problem.message}"


def test_misspelt_field_on_a_node(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml", lambda f: f["nodes"]["what_to_expect"].update(
        nxt=f["nodes"]["what_to_expect"].pop("next")))
    problems = problems_in(prompts)
    find(problems, "flow.yaml", "what_to_expect", "'nxt'")
    find(problems, "flow.yaml", "what_to_expect", "needs 'next'")
    assert {(Path(p.file).name, p.node) for p in problems} == {("flow.yaml", "what_to_expect")}


def test_misspelt_setting_on_an_option(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml", lambda f: f["nodes"]["main_menu"]["options"]["2"].update(
        reson=f["nodes"]["main_menu"]["options"]["2"].pop("reason")))
    only(problems_in(prompts), "flow.yaml", "main_menu", "option 2", "'reson'")


def test_transfer_fallback_that_is_not_a_callback(tmp_path):
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml", lambda f: f["nodes"]["patient_services"].update(fallback="main_menu"))
    only(problems_in(prompts), "flow.yaml", "patient_services", "fallback 'main_menu'", "callback")


def test_several_problems_in_the_flow_and_the_texts_are_all_reported(tmp_path):
    prompts = copy_prompts(tmp_path)

    def change_flow(f):
        nodes = f["nodes"]
        nodes["main_menu"]["txt"] = nodes["main_menu"].pop("text")
        nodes["insurance_plan"]["options"]["*"] = nodes["insurance_plan"]["options"].pop("5")
        nodes["prescreen_intro"]["kind"] = "infos"

    edit(prompts, "flow.yaml", change_flow)
    edit(prompts, "en.yaml", lambda d: d["texts"]["prescreen"].update(done="Thanks {caller}."))
    edit(prompts, "es.yaml", lambda d: d["texts"]["insurance"].pop("cost"))
    problems = problems_in(prompts)
    find(problems, "flow.yaml", "main_menu", "'txt'")
    find(problems, "flow.yaml", "insurance_plan", "'*'")
    find(problems, "flow.yaml", "prescreen_intro", "'infos'")
    find(problems, "en.yaml", "prescreen_done", "{caller}")
    find(problems, "es.yaml", "insurance_cost", "'insurance.cost'")


def test_a_language_file_problem_does_not_hide_problems_elsewhere(tmp_path):
    """One run of `flow check` must list everything, not one file's problems per run."""
    prompts = copy_prompts(tmp_path)

    def change_flow(f):
        f["nodes"]["old_goodbye"] = {"kind": "goodbye", "text": "system.goodbye"}
        f["nodes"]["main_menu"]["options"]["9"] = {"label": "main_menu.repeat", "next": "main_menu"}

    edit(prompts, "flow.yaml", change_flow)
    edit(prompts, "es.yaml", lambda d: d.update(language="es"))
    edit(prompts, "es.yaml", lambda d: d["texts"]["prescreen"].pop("age"))
    edit(prompts, "en.yaml", lambda d: d["texts"]["prescreen"].update(done="Thanks {caller}."))
    with pytest.raises(FlowError) as caught:
        load_flow(prompts)
    problems = caught.value.problems
    find(problems, "es.yaml", None, "'language'")
    find(problems, "es.yaml", "prescreen_age", "'prescreen.age'")
    find(problems, "en.yaml", "prescreen_done", "{caller}")
    find(problems, "flow.yaml", "old_goodbye", "cannot be reached")
    find(problems, "flow.yaml", "main_menu", "crisis key")
    message = str(caught.value)
    assert f"{len(problems)} problem(s)" in message
    assert all(f"  - {p}" in message for p in problems)


# --- 3. voiceline flow check -------------------------------------------------------------------


@pytest.fixture
def bare_env(monkeypatch, tmp_path):
    """No app settings at all, and no .env to find: `flow check` must not need them."""
    for name in ("SECRET_KEY", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "DATABASE_URL",
                 "PROMPTS_DIR", "VOICELINE_ENV", "FLASK_APP"):
        monkeypatch.delenv(name, raising=False)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)

    def no_app(*args, **kwargs):
        raise AssertionError("flow check must not build the app")

    monkeypatch.setattr("voiceline.create_app", no_app)


def broken_prompts(tmp_path: Path) -> Path:
    prompts = copy_prompts(tmp_path)
    edit(prompts, "flow.yaml", lambda f: f["nodes"]["patient_services"].update(fallback="main_menu"))
    edit(prompts, "es.yaml", lambda d: d.update(language="es"))
    return prompts


def test_flow_check_on_the_real_prompts(bare_env):
    result = CliRunner().invoke(cli, ["flow", "check", "--dir", str(PROMPTS)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK: ")
    assert "languages en, es" in result.stdout


def test_flow_check_on_broken_prompts_lists_each_problem(bare_env, tmp_path):
    prompts = broken_prompts(tmp_path)
    result = CliRunner().invoke(cli, ["flow", "check", "--dir", str(prompts)])
    assert result.exit_code == 1
    assert "OK" not in result.stdout
    assert f"{prompts / 'flow.yaml'}: node 'patient_services': fallback 'main_menu'" in result.stderr
    assert f"{prompts / 'es.yaml'}: 'language' must be" in result.stderr
    assert "Traceback" not in result.output


def test_flow_check_reads_prompts_dir_from_the_environment(bare_env, tmp_path, monkeypatch):
    prompts = broken_prompts(tmp_path)
    monkeypatch.setenv("PROMPTS_DIR", str(prompts))
    result = CliRunner().invoke(cli, ["flow", "check"])
    assert result.exit_code == 1
    assert "patient_services" in result.stderr


def clean_env(**extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    env.update(extra)
    return env


def test_flow_check_command_runs_without_any_secrets(tmp_path):
    """The real console script, in a shell with none of the app's settings."""
    prompts = broken_prompts(tmp_path)
    ok = subprocess.run([str(VENV_BIN / "voiceline"), "flow", "check", "--dir", str(PROMPTS)],
                        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: ")
    broken = subprocess.run([str(VENV_BIN / "voiceline"), "flow", "check", "--dir", str(prompts)],
                            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1
    assert "flow.yaml: node 'patient_services'" in broken.stderr
    assert "Traceback" not in broken.stderr


# --- 4. start-up refuses broken prompts ----------------------------------------------------------


def test_create_app_refuses_broken_prompts(tmp_path):
    prompts = broken_prompts(tmp_path)
    config = base_config(f"sqlite:///{tmp_path / 'x.db'}", PROMPTS_DIR=str(prompts))
    with pytest.raises(FlowError) as caught:
        create_app(config)
    find(caught.value.problems, "flow.yaml", "patient_services", "callback")


def test_wsgi_exits_4_with_the_problems_and_no_traceback(tmp_path):
    prompts = broken_prompts(tmp_path)
    env = clean_env(**PRODUCTION_SETTINGS,
                    DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", PROMPTS_DIR=str(prompts))
    run = subprocess.run([str(VENV_BIN / "python"), "-c", "import voiceline.wsgi"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 4, run.stderr
    assert run.stderr.startswith("voiceline: cannot start: ")
    # Paths are shown relative to the working directory when they are inside it.
    assert "prompts/flow.yaml: node 'patient_services': fallback 'main_menu'" in run.stderr
    assert "prompts/es.yaml: 'language' must be" in run.stderr
    assert "Traceback" not in run.stderr


# --- 5. content guards: what the line must never tell a patient ---------------------------------
# The rules live in voiceline/flow/guards.py, so `voiceline flow check` and start-up refuse an
# edit that breaks one; the real prompts passing them is test_real_prompts_load. Here: each
# guard on its own (what it catches, what careful wording it lets through), then a realistic
# bad edit to a copy of the prompts, refused with the file, node, text key and problem named.


def approval_claims(text: str, code: str) -> list[str]:
    """Sentences that misstate what the FDA approved (ketamine, or the FDA without Spravato)."""
    return [s for s in guards.sentences(text) if guards.approval_problem(s, code)]


@pytest.mark.parametrize("code, text, claims", [
    ("en", "IV ketamine is FDA-approved for depression.", 1),
    ("en", "Ketamine is approved by the FDA. Spravato is too.", 1),
    ("en", "Spravato and IV ketamine are FDA approved; we offer both.", 1),
    ("en", "Our FDA-approved ketamine infusions work fast.", 1),
    ("en", "IV ketamine, like Spravato, is FDA-approved.", 1),
    ("en", "Ketamine is not only safe but FDA-approved.", 1),
    ("en", "Ketamine has FDA approval for depression.", 1),
    ("en", "Our treatment is FDA-approved.", 1),  # the FDA, and no Spravato
    ("en", "Our infusions don't need a referral and are FDA cleared.", 1),
    ("en", "Spravato is approved by the FDA. IV ketamine is not FDA-approved.", 0),
    ("en", "Spravato is FDA-approved, and IV ketamine is not.", 0),
    ("en", "The FDA has not approved IV ketamine for depression.", 0),
    ("en", "IV ketamine has never been approved by the FDA for depression.", 0),
    ("en", "Nasal esketamine is approved by the FDA.", 0),
    ("en", "Some plans pay for Spravato, and many of them must approve it first.", 0),
    ("es", "La ketamina intravenosa está aprobada por la FDA.", 1),
    ("es", "Nuestras infusiones de ketamina, aprobadas por la FDA, funcionan rápido.", 1),
    ("es", "Nuestro tratamiento está aprobado por la FDA.", 1),
    ("es", "La esketamina nasal está aprobada por la FDA.", 0),
    ("es", "La ketamina intravenosa no está aprobada por la FDA para la depresión.", 0),
    ("es", "La FDA no ha aprobado la ketamina intravenosa.", 0),
    ("es", "Spravato está aprobado por la FDA, y la ketamina no.", 0),
    ("es", "Algunos planes pagan Spravato, y muchos tienen que aprobarlo antes.", 0),
])
def test_the_approval_guard_itself(code, text, claims):
    assert len(approval_claims(text, code)) == claims


@pytest.mark.parametrize("code", LANGUAGES)
def test_the_line_says_iv_ketamine_is_not_fda_approved(flow, code):
    # The approval guard is not vacuous: the real prompts do explain it.
    denials = [s for t in flow.languages[code].texts.values() for s in guards.sentences(t)
               if guards.KETAMINE.search(s) and guards.APPROVAL.search(s) and guards.NEGATION[code].search(s)]
    assert denials, f"{code}.yaml no longer says IV ketamine is not FDA-approved"


@pytest.mark.parametrize("code, text, promise", [
    ("en", "We guarantee relief.", True), ("en", "Ketamine can cure depression.", True),
    ("en", "This will work for you.", True), ("en", "Our ketamine infusions work fast.", True),
    ("en", "Most patients feel relief within hours.", True), ("en", "Fast relief from depression.", True),
    ("en", "You will feel better after one infusion.", True), ("en", "70 percent of patients respond.", True),
    ("en", "Infusions are completely safe, with no side effects.", True),
    ("en", "Have you tried two or more antidepressants without enough relief?", False),
    ("en", "An I V ketamine infusion takes about 45 minutes.", False),
    ("en", "Patient services will check your coverage.", False),
    ("es", "Le garantizamos resultados.", True), ("es", "La ketamina cura la depresión.", True),
    ("es", "Funciona rápido.", True), ("es", "Alivio rápido de la depresión.", True),
    ("es", "Se sentirá mejor después de una infusión.", True), ("es", "Resultados en 24 horas.", True),
    ("es", "¿Ha probado dos o más antidepresivos que no le ayudaron lo suficiente?", False),
    ("es", "Una infusión intravenosa de ketamina dura unos 45 minutos.", False),
])
def test_the_promise_guard_itself(code, text, promise):
    assert bool(guards.PROMISES[code].search(text)) is promise


@pytest.mark.parametrize("code, text, said", [
    ("en", "Good news, you qualify for treatment.", "you qualify"),
    ("en", "You may be a good candidate.", "You may be a good candidate"),
    ("en", "You are eligible.", "You are eligible"),
    ("en", "Sorry, you don't qualify.", "you don't qualify"),
    ("en", "Based on your answers, ketamine is right for you.", "is right for you"),
    ("en", "You can start treatment next week.", "You can start treatment"),
    ("es", "Usted califica para el tratamiento.", "Usted califica"),
    ("es", "Es un buen candidato.", "Es un buen candidato"),
    ("es", "Usted es elegible.", "Usted es elegible"),
    ("es", "Usted no califica.", "Usted no califica"),
    ("es", "Según sus respuestas, el tratamiento es adecuado para usted.", "es adecuado para usted"),
    # Asking is not telling.
    ("en", "Only a psychiatrist can tell whether you qualify.", None),
    ("en", "Only a consultation can tell whether treatment is a good fit for you.", None),
    ("en", "A psychiatrist will talk with you about which option, if any, fits you.", None),
    ("es", "Un psiquiatra decidirá si usted califica.", None),
    ("es", "Solo una consulta puede indicar si el tratamiento es adecuado para usted.", None),
    ("es", "Un psiquiatra hablará con usted sobre qué opción, si alguna, es adecuada para usted.", None),
])
def test_the_verdict_guard_itself(code, text, said):
    assert guards.verdict(text, code) == said


@pytest.mark.parametrize("code, verb", [("en", "press"), ("es", "oprima")])
def test_welcome_names_911_988_and_the_crisis_key(flow, code, verb):
    # Enforced by the checks (below); this is what the caller hears with the key filled in.
    assert f"{verb} {flow.crisis_key} " in flow.text(code, "welcome")


def refused(prompts: Path, file: str, node: str | None, key: str, *words: str) -> Problem:
    """The one problem an edit causes, naming the file, node, text key and what is wrong."""
    problem = only(problems_in(prompts), file, node, f"text '{key}'", *words)
    where = f"{file}: node '{node}'" if node else file
    assert f"{where}: text '{key}'" in str(problem)
    return problem


def test_a_welcome_without_the_988_lifeline_is_refused(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "en.yaml", "If you are thinking about suicide or are in crisis, press {crisis_key}\n"
                 "    at any time to be connected to the 9 8 8 Suicide and Crisis Lifeline.", "")
    # Without the sentence the greeting names neither the Lifeline nor its key: two problems.
    problems = problems_in(prompts)
    find(problems, "en.yaml", "welcome", "text 'welcome'", "9 8 8 Suicide and Crisis Lifeline")
    find(problems, "en.yaml", "welcome", "text 'welcome'", '"press {crisis_key}"')
    assert len(problems) == 2, described(problems)


def test_a_welcome_without_911_is_refused(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "es.yaml", "Si tiene una emergencia médica, cuelgue y marque\n    9 1 1. ", "")
    refused(prompts, "es.yaml", "welcome", "welcome", "9 1 1", "emergency")


def test_911_written_as_one_number_is_refused_with_the_fix(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "en.yaml", "please hang up\n    and dial 9 1 1. If you are thinking",
                 "please hang up\n    and dial 911. If you are thinking")
    problem = refused(prompts, "en.yaml", "welcome", "welcome", "9 1 1")
    assert "digit by digit" in problem.message


def test_a_welcome_that_no_longer_says_which_key_is_refused(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "es.yaml", "oprima {crisis_key} en\n    cualquier momento para comunicarse",
                 "en cualquier momento puede comunicarse")
    refused(prompts, "es.yaml", "welcome", "welcome", '"oprima {crisis_key}"')


@pytest.mark.parametrize("code, key, old, new", [
    ("en", "system.crisis_reminder", "crisis_reminder: If you are in crisis, press {crisis_key} at any time.",
     "crisis_reminder: If you are in crisis, help is available."),
    ("es", "callback.message_offer", "hablar. No escuchamos los mensajes de inmediato. Si está en crisis, oprima\n"
     "      {crisis_key} ahora.", "hablar. No escuchamos los mensajes de inmediato."),
])
def test_the_crisis_key_must_stay_in_the_reminder_and_before_a_message(tmp_path, code, key, old, new):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, f"{code}.yaml", old, new)
    refused(prompts, f"{code}.yaml", None, key, "crisis_key")


def test_the_main_menu_must_remind_callers_of_the_crisis_key(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "flow.yaml", "    crisis_reminder: true\n", "")
    only(problems_in(prompts), "flow.yaml", "main_menu", "crisis_reminder: true")


def test_an_fda_approved_ketamine_claim_that_promises_speed_is_refused(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "en.yaml", "Here is what a visit is like.",
                 "Our FDA-approved ketamine infusions work fast. Here is what a visit is like.")
    problems = problems_in(prompts)
    claim = find(problems, "en.yaml", "what_to_expect", "text 'what_to_expect.info'", "says ketamine is FDA-approved",
                 "Spravato", "Our FDA-approved ketamine infusions work fast.")
    promise = find(problems, "en.yaml", "what_to_expect", "text 'what_to_expect.info'", "promises a result",
                   '"work fast"')
    assert problems == [claim, promise], described(problems)


def test_dropping_the_denial_from_the_spanish_fda_sentence_is_refused(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "es.yaml", "La ketamina intravenosa no está\n      aprobada por la FDA",
                 "La ketamina intravenosa está\n      aprobada por la FDA")
    refused(prompts, "es.yaml", "what_to_expect", "what_to_expect.info", "says ketamine is FDA-approved")


def test_an_fda_sentence_that_does_not_name_spravato_is_refused(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "en.yaml", "The FDA has approved Spravato for depression",
                 "The FDA has approved our treatment for depression")
    refused(prompts, "en.yaml", "what_to_expect", "what_to_expect.info", "names the FDA without naming Spravato")


@pytest.mark.parametrize("code, old, new, words", [
    ("en", "Patient services will check your coverage", "Ketamine brings relief within hours. Patient services will "
     "check your coverage", '"relief within hours"'),
    ("es", "Así funcionan los costos normalmente.", "Le garantizamos resultados. Así funcionan los costos normalmente.",
     '"garantizamos"'),
])
def test_a_promise_of_results_is_refused(tmp_path, code, old, new, words):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, f"{code}.yaml", old, new)
    refused(prompts, f"{code}.yaml", "insurance_cost", "insurance.cost", "promises a result", words)


@pytest.mark.parametrize("code, old, new, words", [
    ("en", "Thank you. We've noted your answers for our psychiatrist.",
     "Thank you. Good news: you qualify for treatment.", '"you qualify"'),
    ("es", "Gracias. Hemos anotado sus respuestas para nuestro psiquiatra.",
     "Gracias. Según sus respuestas, usted es un buen candidato.", '"usted es un buen candidato"'),
])
def test_a_candidacy_verdict_is_refused(tmp_path, code, old, new, words):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, f"{code}.yaml", old, new)
    refused(prompts, f"{code}.yaml", "prescreen_done", "prescreen.done", "whether they qualify", words)


def test_a_clinic_name_that_makes_a_claim_is_refused(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "en.yaml", "clinic_name: Clearview Infusion Clinics", "clinic_name: Guaranteed Relief Clinics")
    only(problems_in(prompts), "en.yaml", None, "'clinic_name'", "Guaranteed Relief Clinics")


def qualify_edit(tmp_path: Path) -> Path:
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "en.yaml", "Thank you. We've noted your answers for our psychiatrist.",
                 "Thank you. Good news: you qualify for treatment.")
    return prompts


def test_flow_check_refuses_a_content_edit(bare_env, tmp_path):
    prompts = qualify_edit(tmp_path)
    result = CliRunner().invoke(cli, ["flow", "check", "--dir", str(prompts)])
    assert result.exit_code == 1
    assert "OK" not in result.stdout
    assert (f"{prompts / 'en.yaml'}: node 'prescreen_done': text 'prescreen.done' tells the caller whether "
            'they qualify ("you qualify")') in result.stderr


def test_start_up_refuses_a_content_edit(tmp_path):
    prompts = qualify_edit(tmp_path)
    with pytest.raises(FlowError) as caught:
        create_app(base_config(f"sqlite:///{tmp_path / 'x.db'}", PROMPTS_DIR=str(prompts)))
    find(caught.value.problems, "en.yaml", "prescreen_done", "text 'prescreen.done'", "whether they qualify")


@pytest.mark.parametrize("code, verb", [("en", "press"), ("es", "oprima")])
@pytest.mark.parametrize("key", ["prescreen.intro", "callback.message_offer"])
def test_the_crisis_key_is_named_before_the_prescreen_and_before_a_message(flow, code, verb, key):
    # The questions about mood and psychosis are where distress is likeliest; a recorded
    # message is heard only at the callback, so a crisis must not wait in it.
    assert f"{verb} {flow.crisis_key} " in flow.text(code, key)


@pytest.mark.parametrize("code, verb", [("en", "press"), ("es", "oprima")])
def test_option_template_says_press_key(flow, code, verb):
    template = flow.languages[code].texts["system.option"]
    assert f"{verb} {{key}}" in template
    assert "{label}" in template
    assert flow.text(code, "system.option", label="X", key="3").endswith(f"{verb} 3.")


def test_the_operator_key_cannot_be_an_option_or_the_crisis_key(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "flow.yaml", '"6": {label: main_menu.repeat, next: main_menu}',
                 '"0": {label: main_menu.repeat, next: main_menu}')
    only(problems_in(prompts), "flow.yaml", "main_menu", "option 0 is the operator key")
    prompts = copy_prompts(tmp_path / "again")
    replace_text(prompts, "flow.yaml", 'operator_key: "0"', 'operator_key: "9"')
    only(problems_in(prompts), "flow.yaml", None, "operator_key must be a single digit other than the crisis key")


def test_a_closed_text_must_exist_in_both_languages(tmp_path):
    prompts = copy_prompts(tmp_path)
    replace_text(prompts, "flow.yaml", "closed_text: existing_patient.closed", "closed_text: existing_patient.gone")
    problems = problems_in(prompts)
    assert {(p.file.rsplit("/", 1)[-1], p.node) for p in problems} >= {("en.yaml", "existing_patient_transfer"),
                                                                        ("es.yaml", "existing_patient_transfer")}
    assert all("'existing_patient.gone' is missing" in p.message for p in problems)

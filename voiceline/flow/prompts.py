"""Load prompts/flow.yaml, en.yaml and es.yaml into a Flow, and check it thoroughly.

A clinic manager edits these files; a mistake must be caught before a caller hears it.
`load_flow` collects every problem it finds (file, node, what is wrong) and raises
FlowError with all of them, so one run of `voiceline flow check` shows the whole list.
Reading the files is flow/files.py, each node flow/nodes.py, the whole graph and the
texts flow/checks.py, what the texts must and must never say flow/guards.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from voiceline.flow.checks import check_graph, check_texts
from voiceline.flow.files import FlowError, Problem, display, load_language, read_yaml, yaml_key
from voiceline.flow.guards import check_content
from voiceline.flow.model import LANGUAGES, Flow, Node
from voiceline.flow.nodes import NODE_ID, OPTION_KEYS, parse_node

__all__ = ["FlowError", "NODE_ID", "Problem", "load_flow"]

FLOW_FILE = "flow.yaml"
# A call stores "<version>+<8-character fingerprint>" in a 40-character column.
VERSION_MAX = 40 - 9


def load_flow(directory: Path) -> Flow:
    """Read and check the prompts in `directory`; raise FlowError listing every problem."""
    directory = Path(directory)
    problems: list[Problem] = []
    flow_path = directory / FLOW_FILE
    flow_file = display(flow_path)
    top = read_yaml(flow_path, problems)
    languages = {code: lang for code in LANGUAGES if (lang := load_language(directory, code, problems))}
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
    top = {k: yaml_key(v) if k in ("start", "main_menu", "escalate_to", "crisis_key", "operator_key", "version")
           else v for k, v in top.items()}
    if len(top["version"]) > VERSION_MAX:
        problems.append(Problem(flow_file, None, f"'version' is at most {VERSION_MAX} characters (each call "
                                                 f"stores it with the files' fingerprint), got {len(top['version'])}"))
    if top["crisis_key"] not in OPTION_KEYS:
        problems.append(Problem(flow_file, None, f"crisis_key must be a single digit, got {top['crisis_key']!r}"))
    operator_key = top.get("operator_key")
    if operator_key is not None and (operator_key not in OPTION_KEYS or operator_key == top["crisis_key"]):
        problems.append(Problem(flow_file, None, "operator_key must be a single digit other than the crisis key, "
                                                 f"got {operator_key!r}"))

    nodes: dict[str, Node] = {}
    for raw_id, raw in raw_nodes.items():
        node = parse_node(str(raw_id), raw, flow_file, problems)
        if node is not None:
            nodes[node.id] = node
    if not any(p.file == flow_file for p in problems):
        check_graph(flow_file, top, nodes, problems)
    if languages:
        check_texts(flow_file, nodes, languages, directory, problems)
        check_content(flow_file, top, nodes, languages, directory, problems)
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
        operator_key=top.get("operator_key"),
        nodes=nodes,
        languages=languages,
        fingerprint=digest.hexdigest()[:8],
        files=tuple(files),
    )

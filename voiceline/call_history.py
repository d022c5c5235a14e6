"""What happened on calls, read back from their steps: for staff pages, the CLI and the
status callback (which folds a finished call's steps into its record)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from voiceline.models import CallEvent


@dataclass
class Steps:
    """One call's steps, in order."""

    path: list[str] = field(default_factory=list)  # nodes the caller was at, repeats collapsed
    answers: dict[str, str] = field(default_factory=dict)  # latest answer to each question
    language: str | None = None  # the language last spoken
    outcome: str | None = None  # the last outcome a step recorded (transferred, crisis_line, ...)

    def reached(self, node: str) -> bool:
        return node in self.path


def _add(path: list[str], node: str) -> None:
    if node and (not path or path[-1] != node):
        path.append(node)


_STEP_COLUMNS = (CallEvent.call_sid, CallEvent.node, CallEvent.presented, CallEvent.language, CallEvent.outcome,
                 CallEvent.field, CallEvent.value)
# One call's steps: built once, as the final step of every callback capture reads them.
_STEPS_OF_ONE = (sa.select(*_STEP_COLUMNS).where(CallEvent.call_sid == sa.bindparam("call_sid"))
                 .order_by(CallEvent.step))


def _fold(rows, out: dict[str, Steps]) -> dict[str, Steps]:
    for sid, node, presented, language, outcome, name, value in rows:
        steps = out[sid]
        if not steps.path:
            _add(steps.path, node)  # the node the first answer was given at (the greeting)
        _add(steps.path, presented)
        if language:
            steps.language = language
        if outcome:
            steps.outcome = outcome
        if name:
            steps.answers[name] = value
    return out


def steps_of_calls(session: Session, call_sids: Iterable[str]) -> dict[str, Steps]:
    """call_sid -> its Steps, in one query (plain rows on the session's connection: no ORM
    objects, nothing to autoflush)."""
    sids = list(call_sids)
    out = {sid: Steps() for sid in sids}
    if not sids:
        return out
    rows = session.connection().execute(
        sa.select(*_STEP_COLUMNS).where(CallEvent.call_sid.in_(sids)).order_by(CallEvent.call_sid, CallEvent.step)
    )
    return _fold(rows, out)


def steps_of(session: Session, call_sid: str) -> Steps:
    rows = session.connection().execute(_STEPS_OF_ONE, {"call_sid": call_sid})
    return _fold(rows, {call_sid: Steps()})[call_sid]

"""What happened on each call: the call itself, its steps, crisis-line events, recordings."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from voiceline.models.base import Base, now_utc


class Call(Base):
    """One phone call to the line, keyed by Twilio's CallSid."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    caller: Mapped[str | None] = mapped_column(sa.String(20), index=True)  # E.164, when callable
    caller_id_status: Mapped[str] = mapped_column(sa.String(12))  # valid, withheld, invalid
    language: Mapped[str | None] = mapped_column(sa.String(5))
    prompts_version: Mapped[str] = mapped_column(sa.String(40))
    started_at: Mapped[dt.datetime] = mapped_column(default=now_utc, index=True)
    ended_at: Mapped[dt.datetime | None]
    twilio_status: Mapped[str | None] = mapped_column(sa.String(20))
    duration_seconds: Mapped[int | None]
    outcome: Mapped[str | None] = mapped_column(sa.String(30))
    transfer_accepted_at: Mapped[dt.datetime | None]
    callback_id: Mapped[int | None] = mapped_column(sa.ForeignKey("callbacks.id"), index=True)
    # Set when the retention schedule erased its caller, steps and recordings (voiceline/retention.py).
    erased_at: Mapped[dt.datetime | None]

    events: WriteOnlyMapped[CallEvent] = relationship(
        primaryjoin="Call.call_sid == foreign(CallEvent.call_sid)",
        order_by="CallEvent.step",
        viewonly=True,
    )


class CallEvent(Base):
    """One webhook step of a call: the node answered, the choice, what the caller heard next.

    Unique on (call_sid, step): the step number travels in the action URL, so Twilio's retry
    of the same request inserts nothing new. No foreign key to calls: a step is kept even if
    the greeting's own write was lost to a database hiccup.
    """

    __tablename__ = "call_events"
    __table_args__ = (sa.UniqueConstraint("call_sid", "step", name="uq_call_events_call_sid_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(sa.String(64))
    step: Mapped[int]
    at: Mapped[dt.datetime] = mapped_column(default=now_utc)
    node: Mapped[str] = mapped_column(sa.String(64))
    phase: Mapped[str] = mapped_column(sa.String(20), default="")
    choice: Mapped[str] = mapped_column(sa.String(40), default="")
    language: Mapped[str | None] = mapped_column(sa.String(5))
    field: Mapped[str | None] = mapped_column(sa.String(64))
    value: Mapped[str | None] = mapped_column(sa.Text)
    presented: Mapped[str] = mapped_column(sa.String(80), default="")
    outcome: Mapped[str | None] = mapped_column(sa.String(30))  # e.g. transferred, crisis_line


class SafetyEvent(Base):
    """A caller pressed the crisis key and was put through to the 988 Lifeline."""

    __tablename__ = "safety_events"
    __table_args__ = (sa.UniqueConstraint("call_sid", "step", name="uq_safety_events_call_sid_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(sa.String(64))
    step: Mapped[int]
    at: Mapped[dt.datetime] = mapped_column(default=now_utc, index=True)
    kind: Mapped[str] = mapped_column(sa.String(20), default="crisis_line")
    node: Mapped[str] = mapped_column(sa.String(64))
    language: Mapped[str | None] = mapped_column(sa.String(5))
    caller: Mapped[str | None] = mapped_column(sa.String(20))
    dialed: Mapped[str] = mapped_column(sa.String(20))
    dial_status: Mapped[str | None] = mapped_column(sa.String(20))


class Recording(Base):
    """A voice message left during callback capture. Media stays at Twilio; staff play it
    through our app, never through the public Twilio URL."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_sid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    call_sid: Mapped[str] = mapped_column(sa.String(64), index=True)
    url: Mapped[str | None] = mapped_column(sa.Text)
    duration_seconds: Mapped[int | None]
    status: Mapped[str] = mapped_column(sa.String(20), default="in-progress")
    created_at: Mapped[dt.datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[dt.datetime] = mapped_column(default=now_utc, onupdate=now_utc)

"""Database models, one module per concern; import them from here."""

from voiceline.models.base import Base, now_utc
from voiceline.models.callbacks import CallbackRequest
from voiceline.models.calls import Call, CallEvent, Recording, SafetyEvent

__all__ = ["Base", "Call", "CallEvent", "CallbackRequest", "Recording", "SafetyEvent", "now_utc"]

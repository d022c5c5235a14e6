"""Database models, one module per concern; import them from here."""

from voiceline.models.audit import AuditEntry
from voiceline.models.base import Base, now_utc
from voiceline.models.callbacks import CallbackAttempt, CallbackNote, CallbackRequest
from voiceline.models.calls import Call, CallEvent, Recording, SafetyEvent
from voiceline.models.staff import SignInFailure, StaffUser

__all__ = [
    "AuditEntry", "Base", "Call", "CallEvent", "CallbackAttempt", "CallbackNote", "CallbackRequest",
    "Recording", "SafetyEvent", "SignInFailure", "StaffUser", "now_utc",
]

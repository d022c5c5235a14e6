"""Twilio webhooks under /voice/: every route is guarded by the signature check."""

from voiceline.voice.views import bp

__all__ = ["bp"]

"""Twilio webhooks under /voice/: every route is guarded by the signature check."""

from voiceline.voice.views import bp, unknown_voice_url

__all__ = ["bp", "unknown_voice_url"]

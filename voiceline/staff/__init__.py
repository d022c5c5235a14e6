"""The staff web UI under /staff/: sign-in, the callback queue, admin pages."""

from voiceline.staff.views import bp

__all__ = ["bp"]

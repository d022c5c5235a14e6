"""The staff web UI under /staff/: sign-in, the callback queue, safety events, admin pages.

The blueprint and its guard live in `blueprint`; each views module adds its routes to it
when imported here, so importing `voiceline.staff` always yields the complete blueprint.
"""

from voiceline.staff import admin_views, auth_views, queue_views, work_views  # noqa: F401  (routes)
from voiceline.staff import formatting  # noqa: F401  (template filters)
from voiceline.staff.blueprint import bp, not_found

__all__ = ["bp", "not_found"]

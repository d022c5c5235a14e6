"""Staff accounts and the sign-in throttle."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from voiceline.models.base import Base, now_utc

COORDINATOR, ADMIN = "coordinator", "admin"
ROLES = (COORDINATOR, ADMIN)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(sa.String(120))
    role: Mapped[str] = mapped_column(sa.String(20), default=COORDINATOR)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # Bumped on password reset or disable: sessions issued before it stop working.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(default=now_utc)
    last_sign_in_at: Mapped[dt.datetime | None]

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    # Flask-Login's user protocol, kept here rather than through its UserMixin so the
    # session id can carry the session version.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}.{self.session_version}"


class SignInFailure(Base):
    """Failed sign-ins per account and per address, for slowing down password guessing.

    Kept in the database so every web worker sees the same count.
    """

    __tablename__ = "sign_in_failures"

    key: Mapped[str] = mapped_column(sa.String(300), primary_key=True)  # "email:..." or "ip:..."
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[dt.datetime] = mapped_column(default=now_utc)
    blocked_until: Mapped[dt.datetime | None]

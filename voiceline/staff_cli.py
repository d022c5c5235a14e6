"""`voiceline staff ...`: staff accounts from the terminal (there is no public sign-up page)."""

from __future__ import annotations

import sys

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from voiceline import auth
from voiceline.extensions import db
from voiceline.models import StaffUser
from voiceline.models.staff import ROLES

staff_cli = AppGroup("staff", help="Staff accounts.")


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@staff_cli.command("add")
@click.argument("email")
@click.option("--name", required=True, help="The person's name, as colleagues see it.")
@click.option("--role", type=click.Choice(ROLES), default="coordinator", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def staff_add(email: str, name: str, role: str, password_stdin: bool) -> None:
    """Create a staff account."""
    try:
        staff = auth.add_staff(db.session, email, name, role, _password(password_stdin),
                               actor=f"cli:{auth.normalize_email(email)}")
    except auth.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Added {staff.role} {staff.email} ({staff.name}).")


def _set_active(email: str, active: bool) -> None:
    try:
        staff = auth.find_staff(db.session, email)
    except auth.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    auth.set_active(db.session, staff, active, actor="cli")
    db.session.commit()
    click.echo(f"{'Enabled' if active else 'Disabled'} {staff.email}.")


@staff_cli.command("disable")
@click.argument("email")
def staff_disable(email: str) -> None:
    """Disable an account: its sessions end and its claims return to the queue."""
    _set_active(email, False)


@staff_cli.command("enable")
@click.argument("email")
def staff_enable(email: str) -> None:
    """Enable a disabled account again."""
    _set_active(email, True)


@staff_cli.command("reset-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def staff_reset_password(email: str, password_stdin: bool) -> None:
    """Set a new password (ends the person's sessions)."""
    try:
        staff = auth.find_staff(db.session, email)
        auth.reset_password(db.session, staff, _password(password_stdin), actor="cli")
    except auth.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Password reset for {staff.email}.")


@staff_cli.command("list")
def staff_list() -> None:
    """List staff accounts."""
    for staff in db.session.scalars(sa.select(StaffUser).order_by(StaffUser.email)):
        state = "active" if staff.active else "disabled"
        click.echo(f"{staff.email:<40} {staff.role:<12} {state:<9} {staff.name}")

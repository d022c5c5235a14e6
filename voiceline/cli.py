"""The `voiceline` console command: a Flask CLI group (run, db upgrade, flow check, ...)."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import click
from dotenv import find_dotenv, load_dotenv
from flask.cli import FlaskGroup, ScriptInfo

from voiceline.config import REPO_ROOT, ConfigError
from voiceline.flow.prompts import FlowError, load_flow


# Enough to list the commands: `voiceline --help` on a machine with no settings yet.
HELP_ONLY_SETTINGS = {"VOICELINE_ENV": "development", "DATABASE_URL": "sqlite://"}
HELP_ONLY = "VOICELINE_HELP_ONLY"  # in such an app's config: why it can only show help
# Commands of the group itself that need no app (`flow check` reads the prompts alone).
NEEDS_NO_APP = {"flow"}


def _asking_for_help() -> bool:
    """`voiceline`, `voiceline --help`, `voiceline staff --help`: the commands come from the
    app, but listing them needs none of its settings."""
    args = sys.argv[1:]
    return not args or "--help" in args


def _create_app():
    from voiceline import create_app, init_migrations

    try:
        app = create_app()
    except ConfigError as exc:
        if not _asking_for_help():
            click.echo(f"voiceline: cannot start: {exc}", err=True)
            sys.exit(1)
        click.echo(f"voiceline: help only; the commands need their settings: {exc}", err=True)
        app = create_app({**HELP_ONLY_SETTINGS, "PROMPTS_DIR": os.environ.get("PROMPTS_DIR", "")})
        app.config[HELP_ONLY] = str(exc)
    except FlowError as exc:
        click.echo(f"voiceline: cannot start: {exc}", err=True)
        sys.exit(1)
    init_migrations(app)  # `voiceline db upgrade` and friends
    return app


class VoicelineGroup(FlaskGroup):
    """A database that cannot be used (it does not answer, is locked, has no tables) is one
    line naming the problem in the release step's log or a terminal, not a page of
    SQLAlchemy's stack frames; so is any database error of `voiceline db upgrade`. Other
    errors, bugs among them, still show theirs."""

    def get_command(self, ctx: click.Context, name: str):
        """In an app built for help only, every command shows its help but refuses to run:
        "--help" in the arguments may be an option's value (`db upgrade --tag --help`)."""
        command = super().get_command(ctx, name)
        if command is None or name in NEEDS_NO_APP:
            return command
        reason = ctx.ensure_object(ScriptInfo).load_app().config.get(HELP_ONLY)
        return _refusing(command, reason) if reason else command

    def invoke(self, ctx: click.Context):
        from sqlalchemy.exc import DBAPIError, OperationalError

        from voiceline.database import schema_missing
        from voiceline.migrating import migration_failure

        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            migrating = ctx.invoked_subcommand == "db"  # the release step: any failure is one line
            if schema_missing(exc) and not migrating:
                reason = str(exc.orig).strip().splitlines()[0]
                click.echo(f"voiceline: database not set up or behind this code ({reason}): "
                           "run voiceline db upgrade", err=True)
                sys.exit(1)
            if not (migrating or isinstance(exc, OperationalError)):
                raise
            reason = migration_failure(exc) if migrating else str(exc.orig or exc).strip().splitlines()[0]
            click.echo(f"voiceline: database error: {reason}{_sqlite_file(ctx)}", err=True)
            sys.exit(1)


def _refusing(command: click.Command, reason: str) -> click.Command:
    """A copy of `command` (and of its subcommands) whose callbacks refuse to run."""
    refusing = copy.copy(command)
    if isinstance(command, click.Group):
        refusing.commands = {name: _refusing(sub, reason) for name, sub in command.commands.items()}
    else:
        def refuse(*_args, **_kwargs):
            click.echo(f"voiceline: cannot start: {reason}", err=True)
            sys.exit(1)
        refusing.callback = refuse
    return refusing


def _sqlite_file(ctx: click.Context) -> str:
    """' (file: /path)' for SQLite, whose errors never say which file (no password to hide)."""
    from sqlalchemy.engine import make_url

    url = make_url(ctx.ensure_object(ScriptInfo).load_app().config["SQLALCHEMY_DATABASE_URI"])
    return f" (file: {url.database})" if url.get_backend_name() == "sqlite" and url.database else ""


cli = VoicelineGroup(
    name="voiceline",
    create_app=_create_app,
    help="Voiceline, the clinics' telephone intake line.",
    add_version_option=False,  # Flask's names Python, Flask and Werkzeug, not this program
)
cli = click.version_option(package_name="voiceline", prog_name="voiceline", message="%(prog)s %(version)s")(cli)


@cli.group("flow", cls=click.Group)
def flow_group() -> None:
    """The call flow in prompts/."""


@flow_group.command("check")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Prompts folder (default: PROMPTS_DIR, or prompts/ in the checkout).")
def flow_check(directory: Path | None) -> None:
    """Validate the flow and both languages; list every problem found."""
    load_dotenv(find_dotenv(usecwd=True))
    directory = directory or Path(os.environ.get("PROMPTS_DIR") or REPO_ROOT / "prompts")
    try:
        flow = load_flow(directory)
    except FlowError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"OK: {len(flow.nodes)} nodes, languages {', '.join(flow.languages)}, "
               f"prompts version {flow.prompts_version}")

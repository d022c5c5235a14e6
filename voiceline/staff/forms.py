"""The staff UI's forms. Every POST form carries a CSRF token (Flask-WTF); the GET filter
forms do not need one, since they change nothing. One-button forms (Claim, Release, Next,
Sign out) have no fields: they post only the token (templates' csrf() macro), which the
app-wide CSRFProtect checks before any view runs."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import EqualTo, InputRequired, Length, Optional

from voiceline.auth import MIN_PASSWORD_LENGTH
from voiceline.models.staff import ADMIN, COORDINATOR
from voiceline.phones import parse_keyed_us_number
from voiceline.queue.answers import LANGUAGES, REASONS
from voiceline.queue.work import NOTE_LIMIT, OUTCOMES
from voiceline.staff.words import AUDIT_ACTIONS

try:  # WTForms 3.3 deprecates (value, label) tuples; warnings are errors in the tests
    from wtforms import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    def SelectChoice(value, label):  # noqa: N802
        return (value, label)


def choices(pairs) -> list:
    return [SelectChoice(value, label) for value, label in pairs]


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired("Enter your email."), Length(max=254)],
                       render_kw={"autocomplete": "username", "spellcheck": "false"})
    password = PasswordField("Password", validators=[InputRequired("Enter your password."), Length(max=200)],
                             render_kw={"autocomplete": "current-password"})


def phone_search(raw: str) -> str | None:
    """What a coordinator typed to find a caller: "+1XXXXXXXXXX" for a whole number (any
    punctuation), "1234" for the last four digits, or None if it is neither."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    if len(digits) == 4:
        return digits
    return parse_keyed_us_number(digits)


class QueueFiltersForm(FlaskForm):
    class Meta:
        csrf = False

    status = SelectField("Show", choices=choices([("open", "Open"), ("closed", "Closed"), ("all", "All")]),
                         default="open")
    reason = SelectField("Reason", choices=choices([("", "Any reason"), *REASONS.items()]), default="")
    language = SelectField("Language", choices=choices([("", "Any language"), *LANGUAGES.items()]), default="")
    mine = BooleanField("Only requests I am working on")

    def value(self, name: str):
        """The field's value, or its default when the query string held something invalid."""
        field = self[name]
        return field.default if field.errors else field.data


class FindCallerForm(FlaskForm):
    """Posted, never sent as a query string: a URL with a phone number in it would be kept
    by the access log and the router's logs."""

    phone = StringField("Find a caller by phone number", validators=[InputRequired("Type a phone number."),
                                                                    Length(max=32)],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})

    def validate_phone(self, field) -> None:
        if field.data and phone_search(field.data) is None:
            raise ValidationError("Enter a 10-digit US number, or its last 4 digits.")


class AttemptForm(FlaskForm):
    outcome = RadioField("How did the call go?", choices=choices((key, o.label) for key, o in OUTCOMES.items()),
                         validators=[InputRequired("Choose how the call went.")])
    note = TextAreaField("Note about this call (optional)", validators=[Optional(), Length(max=NOTE_LIMIT)],
                         render_kw={"rows": 3})
    # How many attempts the page showed: a second post of the same page (a double click, the
    # browser's resend) finds one more and saves nothing.
    attempts_seen = HiddenField()
    # The request's latest call as the page showed it: a save from a page opened before the
    # caller asked again (their new answers unread) is refused, and the page shown afresh.
    # None from a page opened before this field existed: not checked.
    call_seen = HiddenField()

    def expected_attempts(self) -> int | None:
        seen = (self.attempts_seen.data or "").strip()
        return int(seen) if seen.isdigit() else None


class NoteForm(FlaskForm):
    text = TextAreaField("Add a note", validators=[InputRequired("Write the note first."), Length(max=NOTE_LIMIT)],
                         render_kw={"rows": 3})


def new_password_field(label: str, missing: str) -> PasswordField:
    return PasswordField(
        f"{label} (at least {MIN_PASSWORD_LENGTH} characters)",
        validators=[InputRequired(missing),
                    Length(min=MIN_PASSWORD_LENGTH, max=200,
                           message=f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")],
        render_kw={"autocomplete": "new-password"})


class StaffAddForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired("Enter their email."), Length(max=254)],
                       render_kw={"autocomplete": "off", "spellcheck": "false"})
    name = StringField("Name (colleagues see it)", validators=[InputRequired("Enter their name."), Length(max=120)],
                       render_kw={"autocomplete": "off"})
    role = SelectField("Role", choices=choices([(COORDINATOR, "Coordinator"), (ADMIN, "Admin")]), default=COORDINATOR)
    password = new_password_field("Initial password", "Choose an initial password.")


class PasswordResetForm(FlaskForm):
    password = new_password_field("New password", "Choose a new password.")
    confirm = PasswordField("New password again",
                            validators=[InputRequired("Type the new password again."),
                                        EqualTo("password", "The two passwords are not the same.")],
                            render_kw={"autocomplete": "new-password"})


class AuditFiltersForm(FlaskForm):
    class Meta:
        csrf = False

    action = SelectField("Action", choices=choices([("", "All actions"), *AUDIT_ACTIONS.items()]), default="")


class ExportForm(FlaskForm):
    start = DateField("From (clinic date)", validators=[InputRequired("Choose the first day.")])
    end = DateField("To (clinic date, included)", validators=[InputRequired("Choose the last day.")])

    def validate_end(self, field):
        if self.start.data and field.data and field.data < self.start.data:
            raise ValidationError("The last day must be on or after the first day.")

from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from portal.i18n import LANGUAGES, _l

TIMEZONES = sorted(available_timezones())


class SetupForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[Length(max=200)])
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    confirm = PasswordField(_l("Password again"), validators=[DataRequired(),
                                                              EqualTo("password", _l("The passwords differ."))])


class RegisterForm(SetupForm):
    pass


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


class EmailOnlyForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token: one-button actions."""


class VerifyForm(FlaskForm):
    """Confirming a registration: the password chosen then (not asked in the browser that registered)."""
    password = PasswordField(_l("The password you chose when you registered"), validators=[Length(max=256)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired()])
    confirm = PasswordField(_l("New password again"), validators=[DataRequired(),
                                                                  EqualTo("password", _l("The passwords differ."))])


class VerifyNewPasswordForm(ResetPasswordForm):
    """Confirming a registration one did not make (or whose password is forgotten): the name too,
    since whoever registered chose it."""
    name = StringField(_l("Your name"), validators=[Length(max=200)])


class ProfileForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=200)])
    timezone = SelectField(_l("Time zone"), choices=TIMEZONES)
    # Each language is named in itself, so whoever reads only one finds theirs.
    locale = SelectField(_l("Language"), choices=[("", _l("The one my browser asks for")), *LANGUAGES.items()],
                         validate_choice=False)  # anything else reads as "no choice" (portal.i18n.chosen)


class ChangePasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(_l("New password"), validators=[DataRequired()])
    confirm = PasswordField(_l("New password again"), validators=[DataRequired(),
                                                                  EqualTo("password", _l("The passwords differ."))])

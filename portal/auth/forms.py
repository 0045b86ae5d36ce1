from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from portal.i18n import LANGUAGES, _l

TIMEZONES = sorted(available_timezones())


class SetupForm(FlaskForm):
    name = StringField("Your name", validators=[Length(max=200)])
    email = EmailField("E-mail address", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired()])
    confirm = PasswordField("Password again", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])


class RegisterForm(SetupForm):
    pass


class LoginForm(FlaskForm):
    email = EmailField("E-mail address", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class EmailOnlyForm(FlaskForm):
    email = EmailField("E-mail address", validators=[DataRequired(), Length(max=254)])


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token: one-button actions."""


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired()])
    confirm = PasswordField("New password again", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=200)])
    timezone = SelectField("Time zone", choices=TIMEZONES)
    # Each language is named in itself, so whoever reads only one finds theirs.
    locale = SelectField(_l("Language"), choices=[("", _l("The one my browser asks for")), *LANGUAGES.items()],
                         validate_choice=False)  # anything else reads as "no choice" (portal.i18n.chosen)


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField("New password", validators=[DataRequired()])
    confirm = PasswordField("New password again", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])

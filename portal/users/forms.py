from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, EmailField, PasswordField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from portal.auth.forms import TimezoneField
from portal.i18n import _l


class CreateUserForm(FlaskForm):
    first_name = StringField(_l("First name"), validators=[Length(max=100)])
    last_name = StringField(_l("Last name"), validators=[Length(max=100)])
    email = EmailField(_l("E-mail address"),
                       validators=[DataRequired(_l("Enter the user's address.")), Length(max=254)])
    personal_mailbox = BooleanField(_l("Create a personal mailbox"), default=True)
    recovery_email = EmailField(_l("Recovery address (outside the domain)"), validators=[Length(max=254)])


class SettingsForm(FlaskForm):
    first_name = StringField(_l("First name"), validators=[Length(max=100)])
    last_name = StringField(_l("Last name"), validators=[Length(max=100)])
    timezone = TimezoneField(_l("Time zone"))
    phone = StringField(_l("Phone"), validators=[Length(max=40)])
    default_mailbox_id = SelectField(_l("Default mailbox"), coerce=int, choices=[])
    recovery_email = EmailField(_l("Recovery address"), validators=[Length(max=254)])


class RemoveForm(FlaskForm):
    mailboxes = RadioField(_l("Their personal mailboxes"), default="disable", choices=[
        ("disable", _l("Disable them (mail is kept, nobody can log in)")),
        ("keep", _l("Keep them as they are")),
        ("delete", _l("Delete them (where the backend can)"))])


class UploadForm(FlaskForm):
    workbook = FileField(_l("Workbook (.xlsx)"))


class WelcomeForm(FlaskForm):
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    confirm = PasswordField(_l("Password again"),
                            validators=[DataRequired(), EqualTo("password", _l("The passwords differ."))])

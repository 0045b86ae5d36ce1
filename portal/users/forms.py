from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, EmailField, PasswordField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from portal.auth.forms import TIMEZONES


class CreateUserForm(FlaskForm):
    first_name = StringField("First name", validators=[Length(max=100)])
    last_name = StringField("Last name", validators=[Length(max=100)])
    email = EmailField("E-mail address", validators=[DataRequired("Enter the user's address."), Length(max=254)])
    personal_mailbox = BooleanField("Create a personal mailbox", default=True)
    recovery_email = EmailField("Recovery address (outside the domain)", validators=[Length(max=254)])


class SettingsForm(FlaskForm):
    first_name = StringField("First name", validators=[Length(max=100)])
    last_name = StringField("Last name", validators=[Length(max=100)])
    timezone = SelectField("Time zone", choices=TIMEZONES)
    phone = StringField("Phone", validators=[Length(max=40)])
    default_mailbox_id = SelectField("Default mailbox", coerce=int, choices=[])
    recovery_email = EmailField("Recovery address", validators=[Length(max=254)])


class RemoveForm(FlaskForm):
    mailboxes = RadioField("Their personal mailboxes", default="disable", choices=[
        ("disable", "Disable them (mail is kept, nobody can log in)"),
        ("keep", "Keep them as they are"),
        ("delete", "Delete them (where the backend can)")])


class UploadForm(FlaskForm):
    workbook = FileField("Workbook (.xlsx)")


class WelcomeForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired()])
    confirm = PasswordField("Password again", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])

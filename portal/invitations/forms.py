from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from portal.i18n import _l


class InviteForm(FlaskForm):
    email = EmailField(_l("E-mail address to invite"), validators=[DataRequired(_l("Enter the address to invite.")),
                                                                   Length(max=254)])


class RegisterFromInvitationForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[Length(max=200)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    confirm = PasswordField(_l("Password again"), validators=[DataRequired(),
                                                              EqualTo("password", _l("The passwords differ."))])

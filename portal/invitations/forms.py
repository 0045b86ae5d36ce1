from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length


class InviteForm(FlaskForm):
    email = EmailField("E-mail address to invite", validators=[DataRequired("Enter the address to invite."),
                                                               Length(max=254)])


class RegisterFromInvitationForm(FlaskForm):
    name = StringField("Your name", validators=[Length(max=200)])
    password = PasswordField("Password", validators=[DataRequired()])
    confirm = PasswordField("Password again", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])

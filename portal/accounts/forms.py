from flask_wtf import FlaskForm
from wtforms import EmailField, StringField
from wtforms.validators import DataRequired, Length


class AccountForm(FlaskForm):
    name = StringField("Account name", validators=[DataRequired("Give the account a name."), Length(max=120)])


class AddMemberForm(FlaskForm):
    email = EmailField("E-mail address of a registered person", validators=[DataRequired(), Length(max=254)])

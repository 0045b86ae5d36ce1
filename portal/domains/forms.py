from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length


class AddDomainForm(FlaskForm):
    name = StringField("Domain name", validators=[DataRequired("Enter a domain name, such as example.org."),
                                                  Length(max=300)])
    connection = SelectField("Mail backend", choices=[])


class RemoveDomainForm(FlaskForm):
    confirm = StringField("Type the domain name to confirm", validators=[DataRequired()])

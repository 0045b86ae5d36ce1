from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from portal.i18n import _l


class AddDomainForm(FlaskForm):
    name = StringField(_l("Domain name"), validators=[DataRequired(_l("Enter a domain name, such as example.org.")),
                                                      Length(max=300)])
    connection = SelectField(_l("Mail backend"), choices=[])


class RemoveDomainForm(FlaskForm):
    confirm = StringField(_l("Type the domain name to confirm"), validators=[DataRequired()])

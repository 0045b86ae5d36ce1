from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from portal.i18n import _l


class RoleForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(_l("Give the role a name.")), Length(max=80)])
    description = TextAreaField(_l("Description"), validators=[Length(max=500)])

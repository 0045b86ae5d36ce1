from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length


class RoleForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired("Give the role a name."), Length(max=80)])
    description = TextAreaField("Description", validators=[Length(max=500)])

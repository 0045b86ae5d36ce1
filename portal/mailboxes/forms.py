from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

UNITS = {"MB": 1024 ** 2, "GB": 1024 ** 3}


class WholeNumberField(IntegerField):
    """A whole number as people type it: ASCII digits, short enough to compare (WTForms' range
    check overflows on a 300-digit number)."""

    def process_formdata(self, valuelist):
        if valuelist and valuelist[0].strip():
            text = valuelist[0].strip()
            if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 12:
                self.data = None
                raise ValueError("Enter a whole number of at most 12 digits.")
        super().process_formdata(valuelist)


class QuotaMixin:
    quota = WholeNumberField("Quota", validators=[Optional(), NumberRange(min=1, max=1024 * 1024,
                                                                      message="Enter a whole number above zero.")])
    quota_unit = SelectField("Unit", choices=[("MB", "MB"), ("GB", "GB")], default="GB")

    def quota_bytes(self) -> int | None:
        return None if self.quota.data is None else self.quota.data * UNITS[self.quota_unit.data]


class MailboxForm(QuotaMixin, FlaskForm):
    local_part = StringField("Address (before the @)", validators=[Length(max=64)])
    domain = SelectField("Domain", coerce=int, choices=[])
    kind = RadioField("Kind", choices=[("shared", "Shared (a team address)"), ("personal", "Personal (one person's)")],
                      default="shared")
    first_name = StringField("First name", validators=[Length(max=100)])
    last_name = StringField("Last name", validators=[Length(max=100)])
    display_name = StringField("Display name", validators=[Length(max=200)])


class QuotaForm(QuotaMixin, FlaskForm):
    pass

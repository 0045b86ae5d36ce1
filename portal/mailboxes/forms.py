from flask_babel import gettext
from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

from portal.i18n import _l

UNITS = {"MB": 1024 ** 2, "GB": 1024 ** 3}


class WholeNumberField(IntegerField):
    """A whole number as people type it: ASCII digits, short enough to compare (WTForms' range
    check overflows on a 300-digit number)."""

    def process_formdata(self, valuelist):
        if valuelist and valuelist[0].strip():
            text = valuelist[0].strip()
            if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 12:
                self.data = None
                raise ValueError(gettext("Enter a whole number of at most 12 digits."))
        super().process_formdata(valuelist)


class QuotaMixin:
    quota = WholeNumberField(_l("Quota"), validators=[Optional(), NumberRange(
        min=1, max=1024 * 1024, message=_l("Enter a whole number above zero."))])
    quota_unit = SelectField(_l("Unit"), choices=[("MB", _l("MB")), ("GB", _l("GB"))], default="GB")

    def quota_bytes(self) -> int | None:
        return None if self.quota.data is None else self.quota.data * UNITS[self.quota_unit.data]


class MailboxForm(QuotaMixin, FlaskForm):
    local_part = StringField(_l("Address (before the @)"), validators=[Length(max=64)])
    domain = SelectField(_l("Domain"), coerce=int, choices=[])
    kind = RadioField(_l("Kind"), choices=[("shared", _l("Shared (a team address)")),
                                           ("personal", _l("Personal (one person's)"))], default="shared")
    first_name = StringField(_l("First name"), validators=[Length(max=100)])
    last_name = StringField(_l("Last name"), validators=[Length(max=100)])
    display_name = StringField(_l("Display name"), validators=[Length(max=200)])


class QuotaForm(QuotaMixin, FlaskForm):
    pass

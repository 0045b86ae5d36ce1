from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from portal.i18n import _l

ONE_TIME_CODE = {"inputmode": "numeric", "autocomplete": "one-time-code", "spellcheck": "false"}


class AppCodeForm(FlaskForm):
    code = StringField(_l("Code from your authenticator app"), validators=[
        DataRequired(_l("Enter the 6-digit code your app shows.")), Length(max=20)], render_kw=ONE_TIME_CODE)


class RecoveryCodeForm(FlaskForm):
    recovery_code = StringField(_l("Recovery code"), validators=[
        DataRequired(_l("Enter one of your recovery codes.")), Length(max=40)],
        render_kw={"autocomplete": "off", "spellcheck": "false"})


class PasskeyForm(FlaskForm):
    """Filled in by static/js/passkeys.js with the browser's answer."""

    credential = HiddenField()


class NewPasskeyForm(PasskeyForm):
    name = StringField(_l("Name of the passkey"), validators=[Length(max=60)],
                       render_kw={"placeholder": _l("e.g. work laptop, phone")})


class PasswordConfirmForm(FlaskForm):
    password = PasswordField(_l("Your password"), validators=[DataRequired(_l("Enter your password.")),
                                                               Length(max=256)])

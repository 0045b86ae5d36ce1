from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from portal.i18n import LANGUAGES, _l

ZONES = frozenset(available_timezones())
# The regions of the time zone database whose zones are places (a city, an island): what the
# pickers list, by region; the rest (legacy names such as US/Eastern, Etc/GMT+5) stay valid.
REGIONS = {"Africa": _l("Africa"), "America": _l("Americas"), "Antarctica": _l("Antarctica"),
           "Arctic": _l("Arctic"), "Asia": _l("Asia"), "Atlantic": _l("Atlantic Ocean"),
           "Australia": _l("Australia"), "Europe": _l("Europe"), "Indian": _l("Indian Ocean"),
           "Pacific": _l("Pacific Ocean")}
PLACES = {region: sorted(((zone, zone.split("/", 1)[1].replace("_", " ").replace("/", " / "))
                          for zone in ZONES if zone.split("/", 1)[0] == region), key=lambda pair: pair[1])
          for region in sorted(REGIONS)}


class TimezoneField(SelectField):
    """A time zone: the places of the database by region (with UTC), rather than its 599 names in
    one list (a walkthrough); any name of the database is accepted, and one chosen before that
    the list leaves out is offered as it is."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, validate_choice=False, **kwargs)

    @property
    def choices(self):
        groups = {"UTC": [("UTC", "UTC")]}
        for region, places in PLACES.items():
            groups[str(REGIONS[region])] = places
        if self.data in ZONES and self.data != "UTC" and self.data.split("/", 1)[0] not in REGIONS:
            groups[str(_l("Other"))] = [(self.data, self.data)]
        return groups

    def pre_validate(self, form):
        if self.data not in ZONES:
            raise ValidationError(_l("Choose a time zone from the list."))


class SetupForm(FlaskForm):
    name = StringField(_l("Your name"), validators=[Length(max=200)])
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired()])
    confirm = PasswordField(_l("Password again"), validators=[DataRequired(),
                                                              EqualTo("password", _l("The passwords differ."))])


class RegisterForm(SetupForm):
    pass


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


class EmailOnlyForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token: one-button actions."""


class VerifyForm(FlaskForm):
    """Confirming a registration: the password chosen then (not asked in the browser that registered)."""
    password = PasswordField(_l("The password you chose when you registered"), validators=[Length(max=256)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired()])
    confirm = PasswordField(_l("New password again"), validators=[DataRequired(),
                                                                  EqualTo("password", _l("The passwords differ."))])


class VerifyNewPasswordForm(ResetPasswordForm):
    """Confirming a registration one did not make (or whose password is forgotten): the name too,
    since whoever registered chose it."""
    name = StringField(_l("Your name"), validators=[Length(max=200)])


class ProfileForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Length(max=200)])
    timezone = TimezoneField(_l("Time zone"))
    # Each language is named in itself, so whoever reads only one finds theirs.
    locale = SelectField(_l("Language"), choices=[("", _l("The one my browser asks for")), *LANGUAGES.items()],
                         validate_choice=False)  # anything else reads as "no choice" (portal.i18n.chosen)


class ChangePasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(_l("New password"), validators=[DataRequired()])
    confirm = PasswordField(_l("New password again"), validators=[DataRequired(),
                                                                  EqualTo("password", _l("The passwords differ."))])

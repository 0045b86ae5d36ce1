from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from portal.i18n import LANGUAGES, _l


class AccountForm(FlaskForm):
    name = StringField(_l("Account name"), validators=[DataRequired(_l("Give the account a name.")), Length(max=120)])


class AccountSettingsForm(FlaskForm):
    name = StringField(_l("Account name"), validators=[DataRequired(_l("Give the account a name.")), Length(max=120)])
    self_registration = BooleanField(_l("People registering with an address on our active domains join this account"))
    personal_mailboxes = BooleanField(_l("New corporate users get a personal mailbox"))
    personal_mailbox_role_id = SelectField(_l("Their role on that mailbox"), coerce=int, choices=[])
    require_two_factor = BooleanField(_l("Members who administer this account must use two-factor sign-in"))
    deprovisioned_mailboxes = SelectField(
        _l("When your identity provider removes someone (SCIM), their personal mailboxes are"),
        choices=[("disable", _l("Disabled: their mail is kept, nobody can use it")), ("keep", _l("Kept as they are")),
                 ("delete", _l("Deleted, with their mail, where the backend can"))])
    default_locale = SelectField(_l("Language of invitations to people without a profile"),
                                 choices=[("", _l("The portal's default")), *LANGUAGES.items()],
                                 validate_choice=False)  # anything else reads as "no choice" (portal.i18n.chosen)


class DeleteAccountForm(FlaskForm):
    confirm = StringField(_l("Type the account's name to confirm"), validators=[DataRequired(), Length(max=120)])
    delete_mailboxes = BooleanField(_l("Delete the mailboxes where the backend can (otherwise they are disabled)"))


class DeleteProfileForm(FlaskForm):
    confirm = StringField(_l("Type your e-mail address to confirm"), validators=[DataRequired(), Length(max=254)])

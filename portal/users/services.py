"""Corporate users made by their account's administrators: one by one, their
settings, their removal, and the onboarding link that lets them set a password."""

from __future__ import annotations


from flask import current_app
from flask_babel import gettext as _

from portal.accounts.models import Account, Membership
from portal.audit.services import record
from portal.auth import sessions, tokens
from portal.auth.forms import ZONES
from portal.auth.addresses import address_problem
from portal.auth.models import User
from portal.auth.services import AuthError, find_user, normalize_email
from portal.domains import ownership
from portal.extensions import db
from portal.i18n import StoredReason, chosen, label, later
from portal.jobs.registry import PermanentJobError, handler
from portal.jobs.services import enqueue
from portal.mail.services import deliver_now
from portal.mailboxes.models import DELETED, ENABLED, FAILED, PERSONAL, Mailbox
from portal.roles.services import AccessError, account_permissions, handable, outranks
from portal.timeutil import utcnow
from portal.users import corporate
from portal.web.urls import external_url

ONBOARDING = "onboarding"
ONBOARDING_KIND = "users.onboarding"
ONBOARDING_HOURS = 72
NAME_LIMIT = 100
# The full name ("first last") is kept in a column of 200 characters.
NAMES_TOGETHER = 199


class UserError(StoredReason, ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _clean_name(value: str, field: str) -> str:
    """``value`` with its spaces tidied; ``field`` is "first_name" or "last_name"."""
    value = " ".join((value or "").split())
    first = field == "first_name"
    if not value:
        raise UserError(later("Enter the first name.") if first else later("Enter the last name."), field)
    if len(value) > NAME_LIMIT:
        raise UserError(later("The first name is at most %(limit)s characters.", limit=NAME_LIMIT) if first else
                        later("The last name is at most %(limit)s characters.", limit=NAME_LIMIT), field)
    return value


def _full_name(first_name: str, last_name: str, kept: str | None = None) -> tuple[str, str]:
    """The first and last names, tidied and checked, each and together (unless they make the
    name ``kept`` already has, kept before names were checked together)."""
    first, last = _clean_name(first_name, "first_name"), _clean_name(last_name, "last_name")
    if len(first) + len(last) > NAMES_TOGETHER and f"{first} {last}" != kept:
        raise UserError(later("The first and last names together are at most %(limit)s characters.",
                              limit=NAMES_TOGETHER), "last_name")
    return first, last


def corporate_domain_for(account: Account, email: str, *, personal_mailbox: bool = False):
    """The account's active domain the address is on; refuses any other address with the reason.
    With a personal mailbox, the address must also be one the account may use for a mailbox."""
    local_part, _at, domain_name = email.rpartition("@")
    try:
        domain = ownership.usable_domain(account.id, domain_name, ownership.ROUTE, "email")
    except ownership.NameRefused as refusal:
        raise UserError(later("The address must be on one of this account's active domains: %(reason)s",
                              reason=refusal.stored), "email") from None
    if not domain.is_active:
        raise UserError(_("%(domain)s is %(status)s: new users can only be created on enabled domains.",
                          domain=domain.name, status=label(domain.status, "domain.status").lower().replace("_", " ")),
                        "email")
    if personal_mailbox and not _own_mailbox_kept(domain, email):
        try:
            ownership.address_for(account.id, domain, local_part, ownership.ROUTE, field="email")
        except ownership.NameRefused as refusal:
            raise UserError(later("No personal mailbox can have this address: %(reason)s", reason=refusal.stored),
                            "email") from None
    return domain


def _own_mailbox_kept(domain, address: str) -> bool:
    """Whether the address has its person's own personal mailbox, kept (or disabled) when they were
    removed: made again one by one (or by their identity provider), they may get it back
    (``_give_back_owners_role``)."""
    return db.session.execute(db.select(Mailbox.id).join(User, User.id == Mailbox.owner_id).where(
        Mailbox.domain_id == domain.id, Mailbox.address == address, Mailbox.kind == PERSONAL,
        Mailbox.status != DELETED, User.email == address)).first() is not None


def _give_back_owners_role(actor: User, account: Account, user: User, mailbox: Mailbox) -> None:
    """Their own personal mailbox, kept or disabled when they were removed: its owner's role again
    (it went with their membership), when whoever makes them again may give it, as by hand: a
    mailbox's content is not for someone who may only create users, through a profile they set up.
    It stays as the removal left it (disabled, say): enabling it is a choice of its own."""
    from portal.accounts.services import add_member
    from portal.roles import catalogue
    from portal.roles.models import Role
    from portal.roles.services import grant_mailbox_role, mailbox_grants, system_role

    membership = add_member(account, user)
    if mailbox_grants(membership, mailbox.id):
        return
    role = (db.session.get(Role, account.personal_mailbox_role_id) if account.personal_mailbox_role_id
            else system_role(catalogue.MAILBOX_OWNER))
    try:
        grant_mailbox_role(actor, account, membership, mailbox.id, role)
    except AccessError as refusal:
        record("user.personal_mailbox_refused", account=account, target=user, actor=actor,
               reason=refusal.stored)


def issue_onboarding_link(user: User, given_by: int | None = None) -> str:
    """A new onboarding link; ``given_by``: whom it is shown, or who chose the address it is mailed
    to, when not the person (it works only while they hold every right the person holds)."""
    raw = tokens.issue(user, ONBOARDING, ONBOARDING_HOURS, given_by=given_by)
    return external_url("users.welcome", token=raw)


def still_outranks(giver_id: int | None, user: User, since=None) -> bool:
    """Whether whoever was given a link of ``user`` (or chose where it goes) holds every right
    ``user`` holds now: they may have got more since (a review: someone who may only create users
    kept the link shown to them, and used it once the person was made Administrator). Nobody
    recorded, or the person themself: yes; a profile deleted or suspended since: no, and one made
    after ``since`` (when the link was given: SQLite gives a freed id again) is someone else."""
    if giver_id is None or giver_id == user.id:
        return True
    giver = db.session.get(User, giver_id)
    account = db.session.get(Account, user.corporate_account_id) if user.corporate_account_id else None
    return giver is not None and giver.suspended_at is None and account is not None and \
        (since is None or giver.created_at <= since) and outranks(giver, account, user)


def reaches_others(user: User, given_by: int | None, since=None) -> bool:
    """Whether an onboarding link of ``user`` given to ``given_by`` (shown to them, or mailed to the
    recovery address they chose at ``since``; None: mailed to the person's own address, or given
    before givers were recorded) may be read by someone without every right the person holds now:
    the giver, or a reader of a mailbox receiving the recovery address or their own. Asked when the
    link is mailed and again when it is used."""
    from portal.auth.services import read_by_others, reset_withheld

    return not still_outranks(given_by, user, since=since) \
        or (user.recovery_email is not None and read_by_others(user.recovery_email, user) is not None) \
        or (given_by is None and reset_withheld(user) is not None)


def onboarding_link_problem(token, user: User) -> str | None:
    """Why an onboarding link may not be used now, if so (``reaches_others``)."""
    return given_since_message(user) if reaches_others(user, token.given_by_id, token.created_at) else None


def create_corporate_user(actor: User, account: Account, *, first_name: str, last_name: str, email: str,
                          personal_mailbox: bool, recovery_email: str = "",
                          link_shown: bool = True) -> tuple[User, str | None]:
    """Create the user (and their mailbox through the job system); return the user and,
    when there is no recovery address to mail it to, the onboarding link to show once.
    ``link_shown`` False (an identity provider creating them: nobody to show it to) makes no
    link then: they sign in through single sign-on, or an admin gives them one from their page."""
    first, last = _full_name(first_name, last_name)
    try:
        address = normalize_email(email)
    except AuthError as error:
        raise UserError(str(error), "email") from None
    domain = corporate_domain_for(account, address, personal_mailbox=personal_mailbox)
    existing = find_user(address)
    if existing is not None and not vacant_profile(existing):
        raise UserError(later("%(email)s already has a profile. Invite it instead.", email=address), "email")
    from portal.mailboxes.models import MailboxAlias
    from portal.mailboxes.services import received_by_name

    # Its mail (a password reset among it) would reach whoever reads the mailbox, not this person
    # (only this account's mailboxes: another's are that account's to know).
    if db.session.execute(db.select(MailboxAlias.id).join(Mailbox, Mailbox.id == MailboxAlias.mailbox_id).where(
            MailboxAlias.address == address, Mailbox.account_id == account.id)).first() is not None:
        raise UserError(later("%(email)s is an alias of a mailbox: remove the alias first.", email=address), "email")
    if received_by_name(account.id, [address]):
        raise UserError(later("%(email)s is a mailbox: whoever reads it would get this person's mail, a "
                              "password reset among it. Choose another address, or remove the mailbox first.",
                              email=address), "email")
    if link_shown and _invitation_waits(address, account.id):
        # The person answers this account's invitation with a profile of their own. Another
        # account's invitation to an address on this account's own domain stays theirs to answer:
        # signed in through an onboarding link (which proves nothing of who reads the address),
        # the profile answers only with that invitation's own link, mailed to the address.
        raise UserError(later("An invitation is waiting for %(email)s: the person answers it with a profile of their "
                              "own. Withdraw it first to create them here.", email=address), "email")
    recovery = None
    if recovery_email.strip():
        try:
            recovery = normalize_email(recovery_email)
        except AuthError as error:
            raise UserError(address_problem(error), "recovery_email") from None
        if recovery.rsplit("@", 1)[-1] == domain.name:
            raise UserError(later("The recovery address must be outside the domain, so the link reaches them "
                                  "before their mailbox works."), "recovery_email")
        _refuse_recovery_read_here(account, recovery)
    if existing is not None:
        # Someone registered the address and nobody confirmed it (perhaps a stranger, with a
        # password of their own), or a profile nobody ever signed into belongs to no account. The
        # account's person takes the profile over; a registrant's password and links go.
        user = existing
        user.name, user.recovery_email = f"{first} {last}", recovery
        take_over_registration(user)
        record("user.registration_taken_over", account=account, target=user, actor=actor)
    else:
        user = User(email=address, name=f"{first} {last}", recovery_email=recovery)
        db.session.add(user)
        db.session.flush()
    user.recovery_set_by_id = getattr(actor, "id", None) if recovery else None
    user.recovery_set_at = utcnow() if recovery else None
    mailbox = corporate.make_corporate(user, domain, personal_mailbox=personal_mailbox, actor=actor)
    if mailbox is not None and mailbox.owner_id == user.id and personal_mailbox:
        _give_back_owners_role(actor, account, user, mailbox)
    if mailbox is not None:
        user.default_mailbox_id = mailbox.id
    record("user.create_corporate", account=account, target=user, actor=actor, personal_mailbox=personal_mailbox)
    if not link_shown and not (user.recovery_email or onboarding_mailbox(user)):
        return user, None
    return user, send_onboarding(actor, account, user)


def unconfirmed_registration(user: User) -> bool:
    """A self-registration nobody confirmed: it proves nobody, and holds a password of its registrant.
    (Not a corporate user waiting for their first password: they have none, and belong to an account.)"""
    return (user.password_hash is not None and user.email_verified_at is None and user.oidc_subject is None
            and not user.is_superadmin and not user.is_corporate)


def take_over_registration(user: User) -> None:
    """An account's person takes over a registration nobody confirmed: the password its registrant
    chose, their links and any session go."""
    user.password_hash = None
    for purpose in (tokens.VERIFY_EMAIL, tokens.RESET_PASSWORD, ONBOARDING):
        tokens.retire(user, purpose)
    sessions.end_all(user, sessions.EXPIRED)


def retire_credentials(user: User) -> int:
    """What lets someone sign in or act as ``user`` without a second factor goes: their password,
    recovery address, links, sessions and the API tokens they made. For a profile at a name another
    account held, whose people may have set or read any of them (a review: an account removed its
    domain, another proved it, and the first one's owner signed in as the second's user with the
    password they had set through the onboarding link shown to them). Second factors stay: alone
    they open nothing, and removing them is for whoever outranks the person (``reset_by_admin``).
    Single sign-on stays: the provider decides. Returns how many tokens were revoked."""
    from portal.tokens.models import ApiToken

    user.password_hash = None
    user.recovery_email, user.recovery_set_by_id, user.recovery_set_at = None, None, None
    for purpose in (tokens.VERIFY_EMAIL, tokens.RESET_PASSWORD, ONBOARDING):
        tokens.retire(user, purpose)
    sessions.end_all(user, sessions.EXPIRED)
    return db.session.execute(db.update(ApiToken).where(
        ApiToken.created_by_id == user.id, ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount


def vacant_profile(user: User) -> bool:
    """A profile that shows nobody reads its address: a self-registration nobody confirmed (a
    stranger's, perhaps), or a profile never signed into that belongs to no account (a corporate
    user removed before their first sign-in). A mailbox may take such an address (``retire_vacant``)."""
    if user.is_superadmin or user.is_corporate or user.oidc_subject is not None:
        return False
    if unconfirmed_registration(user):
        return True
    return user.password_hash is None and db.session.execute(
        db.select(Membership.id).where(Membership.user_id == user.id).limit(1)).first() is None


def retire_vacant(address: str, account: Account | int, actor: User | None) -> None:
    """A mailbox or an alias of the account that proved the domain now takes ``address``: a vacant
    profile there goes. Whoever reads the mailbox would otherwise confirm the registration, or set
    the profile's first password, and sign in as a person where there is only a mailbox."""
    user = find_user(address)
    if user is not None and vacant_profile(user):
        record("user.vacant_removed", account=account, target=user, actor=actor)
        db.session.delete(user)
        db.session.flush()


def _invitation_waits(address: str, account_id: int) -> bool:
    from portal.invitations.models import PENDING, Invitation
    from portal.timeutil import utcnow

    return db.session.execute(db.select(Invitation.id).where(
        Invitation.account_id == account_id, Invitation.email == address, Invitation.status == PENDING,
        Invitation.expires_at > utcnow())).first() is not None


def require_outranks(actor: User, account: Account, user: User, *, elsewhere: bool = True) -> None:
    """Acting on someone's profile needs every right they hold, in this account and (what gives the
    means to act as them) elsewhere: see ``outranks``."""
    if not outranks(actor, account, user, elsewhere=elsewhere):
        raise AccessError(later("You cannot do this for a user who holds rights you do not hold (in this account, "
                                "on one of its mailboxes, or in another account)."))


def never_signed_in(user: User) -> bool:
    return user.password_hash is None and user.oidc_subject is None


def complete_onboarding(raw: str, password: str) -> User:
    from portal.auth.passwords import hash_password, password_problem
    from portal.timeutil import utcnow

    token = tokens.peek(raw, ONBOARDING)
    if token is None:
        raise AuthError(_("This link has expired or was already used. Ask your administrator for a new one."))
    user = db.session.get(User, token.user_id)
    if not never_signed_in(user):
        # An onboarding link sets a first password; it never replaces one.
        tokens.consume(raw, ONBOARDING)
        raise AuthError(_("This profile already has a password. Log in, or ask for a password reset."))
    refused = onboarding_link_problem(token, user)
    if refused:
        raise AuthError(refused)
    problem = password_problem(password, user.email)
    if problem:
        raise AuthError(problem, "password")
    if tokens.consume(raw, ONBOARDING) is None:
        raise AuthError(_("This link has expired or was already used. Ask your administrator for a new one."))
    user.password_hash = hash_password(password)
    # They may sign in now. The link may have been shown to whoever created them, or mailed to a
    # recovery address: it does not prove who reads the login address (address_proven_at).
    user.email_verified_at = user.email_verified_at or utcnow()
    record("user.onboarded", target=user, actor=user)
    return user


def given_since_message(user: User) -> str:
    return _("This link was given to someone who does not hold every right %(email)s holds now. Ask an "
             "administrator for a new one.", email=user.email)


def onboarding_mailbox(user: User) -> Mailbox | None:
    """The personal mailbox at the person's own address, the one their onboarding mail may go to."""
    return db.session.execute(db.select(Mailbox).where(
        Mailbox.owner_id == user.id, Mailbox.address == user.email, Mailbox.status.not_in((DELETED, FAILED)))
        .limit(1)).scalar_one_or_none()


def send_onboarding(actor: User, account: Account, user: User, *, may_show: bool = True) -> str | None:
    """Get the onboarding link to the person: by e-mail to their recovery address, else to their
    personal mailbox once it works (``users.onboarding`` job); return it to show to ``actor`` only
    when neither exists, and only when ``actor`` holds every right the person holds (the link
    lets whoever has it act as them). Only for the account's corporate users: a bulk run sent it
    to someone whose domain the account had let go, who was a member still (a review)."""
    if not is_corporate_of(user, account):
        raise UserError(later("%(email)s is not a corporate user of this account.", email=user.email))
    if not never_signed_in(user):
        raise UserError(later("%(email)s has already set a password; they can reset it themselves.", email=user.email))
    if user.recovery_email or onboarding_mailbox(user) is not None:
        enqueue(ONBOARDING_KIND, {"user_id": user.id}, subject=f"user:{user.id}", account=account)
        record("user.send_onboarding", account=account, target=user, actor=actor,
               to=user.recovery_email or user.email)
        return None
    if not may_show:
        raise UserError(later("%(email)s has no recovery address and no personal mailbox: open their page to "
                              "get a link to give them.", email=user.email))
    require_outranks(actor, account, user)
    # Not "sent": the link is shown to the administrator to give by hand (a walkthrough).
    record("user.onboarding_shown", account=account, target=user, actor=actor)
    return issue_onboarding_link(user, given_by=actor.id)


@handler(ONBOARDING_KIND, max_attempts=40, backoff_seconds=30, backoff_cap_seconds=1800)
def deliver_onboarding(job) -> None:
    """Mail the onboarding link; its token is made here, so it never rests in clear in the queue.
    A personal mailbox still being created is waited for."""
    user = db.session.get(User, job.payload["user_id"])
    if user is None or not never_signed_in(user):
        return
    to, given_by = user.recovery_email, None
    if to is not None:
        # Whoever chose the address reads what goes there: only while they hold every right the
        # person holds now (a review: a recovery address a helper chose got the link of someone
        # made Administrator since); and so does whoever reads a mailbox of the portal receiving it.
        given_by = user.recovery_set_by_id
        if reaches_others(user, given_by, user.recovery_set_at):
            raise PermanentJobError(_("%(email)s's recovery address was chosen, or is read, by someone who does not "
                                      "hold every right they hold now: an administrator who does must set it again, "
                                      "or give them a link.", email=user.email))
    else:
        mailbox = onboarding_mailbox(user)
        if mailbox is None:
            raise PermanentJobError(_("%(email)s has no recovery address and no working personal mailbox: "
                                      "an administrator must give them a link.", email=user.email))
        if mailbox.status != ENABLED:
            raise OnboardingWaits(_("waits for the mailbox %(address)s to be created", address=mailbox.address))
        if reaches_others(user, None):  # someone without their rights reads it too
            raise PermanentJobError(_("%(email)s's mail is read by someone who does not hold every right they "
                                      "hold: an administrator must give them a link.", email=user.email))
        to = user.email
    account = db.session.get(Account, user.corporate_account_id) if user.corporate_account_id else None
    # The recovery address has no profile of its own, and a new person has chosen no language
    # yet: they read their account's.
    language = chosen(user.locale) or (account.default_locale if account is not None else None)
    deliver_now(to, "onboarding", language=language, account=account, user=user,
                link=issue_onboarding_link(user, given_by=given_by), hours=ONBOARDING_HOURS)


class OnboardingWaits(Exception):
    """The onboarding mail waits for something; the job is tried again later."""


# -- settings ------------------------------------------------------------------------

def is_corporate_of(user: User, account: Account) -> bool:
    return user.is_corporate and user.corporate_account_id == account.id


def own_mailboxes(user: User, account: Account) -> list[Mailbox]:
    return list(db.session.execute(db.select(Mailbox).where(
        Mailbox.account_id == account.id, Mailbox.owner_id == user.id, Mailbox.status != DELETED)
        .order_by(Mailbox.address)).scalars())


def _refuse_recovery_read_here(account: Account, recovery: str) -> None:
    """A recovery address is where only the person reads: not one a mailbox of this account receives
    by name, whose readers would get their links (a review: an import's preview accepted a shared
    mailbox as a recovery address, and its result said the link was mailed there while the mailing
    was refused for its readers). Another account's mailboxes are that account's to know: the
    mailing itself checks them (``deliver_onboarding``)."""
    from portal.mailboxes.services import received_by_name

    if received_by_name(account.id, [recovery]):
        raise UserError(later("%(email)s is received by a mailbox of this account, whose readers would get this "
                              "person's links: give an address only they read, or none.", email=recovery),
                        "recovery_email")


def update_settings(actor: User, account: Account, user: User, *, first_name: str, last_name: str,
                    timezone: str, phone: str, default_mailbox_id: int | None, recovery_email: str) -> None:
    if not is_corporate_of(user, account):
        raise UserError(later("Only corporate users of this account have settings here."))
    name = " ".join(_full_name(first_name, last_name, kept=user.name))
    recovery = None
    if recovery_email.strip():
        # Kept as at creation (the domain in its ASCII form), so that the mailboxes receiving it are
        # found (a review: jane@bücher.example was never compared with xn--bcher-kva.example).
        try:
            recovery = normalize_email(recovery_email)
        except AuthError as error:
            raise UserError(str(error), "recovery_email") from None
    new_recovery = recovery != user.recovery_email
    if new_recovery and recovery is not None:
        _refuse_recovery_read_here(account, recovery)
    if new_recovery or name != user.name:
        # Where their links go, and the name others know them by (in mails, lists and the audit
        # log), are changed only by someone who holds every right they hold (here; and anywhere
        # for where their links go, which is the means to act as them).
        require_outranks(actor, account, user, elsewhere=new_recovery)
    phone = phone.strip()
    if phone and not current_app.config["PORTAL"]["USER_PHONES"]:
        raise UserError(later("Phone numbers are not enabled on this portal."), "phone")
    if phone and (len(phone) > 40 or not all(c.isdigit() or c in "+-() ." for c in phone)):
        raise UserError(later("Enter a phone number with digits, spaces and + - ( ) only."), "phone")
    if timezone != user.timezone and timezone not in ZONES:
        # The pages offer the list; the API took any text, and times then showed in UTC unsaid.
        raise UserError(later("Choose a time zone of the tz database, such as Europe/Paris."), "timezone")
    if default_mailbox_id and default_mailbox_id not in {m.id for m in own_mailboxes(user, account)}:
        raise UserError(later("Choose one of the user's own mailboxes."), "default_mailbox_id")
    changes = {}
    for attribute, value in (("name", name), ("timezone", timezone), ("phone", phone),
                             ("default_mailbox_id", default_mailbox_id or None), ("recovery_email", recovery)):
        if getattr(user, attribute) != value:
            changes[attribute] = value
            setattr(user, attribute, value)
    if "recovery_email" in changes:
        user.recovery_set_by_id, user.recovery_set_at = (actor.id, utcnow()) if recovery else (None, None)
    if changes:
        record("user.settings", account=account, target=user, actor=actor, changed=sorted(changes))


# -- suspension ----------------------------------------------------------------------

def suspend(actor: User, account: Account, user: User) -> str:
    """Stop a corporate user of the account for now: no log-in, sessions ended, personal
    mailboxes disabled where their backend can; every right is kept for their return."""
    from portal.mailboxes import services as mailboxes
    from portal.timeutil import utcnow

    if not is_corporate_of(user, account):
        raise UserError(later("%(email)s is not a corporate user of this account; only those can be suspended.",
                              email=user.email))
    if user.id == actor.id:
        raise UserError(later("You cannot suspend yourself."))
    require_outranks(actor, account, user, elsewhere=False)
    if user.suspended_at is not None:
        return _("already suspended")
    user.suspended_at = utcnow()
    sessions.end_all(user, sessions.SUSPENDED)
    disabled = []
    for mailbox in own_mailboxes(user, account):
        if mailbox.status == ENABLED and mailboxes.capabilities_of(mailbox).mailbox_disable:
            mailboxes.set_active(actor, mailbox, False)
            disabled.append(mailbox.address)
    record("user.suspend", account=account, target=user, actor=actor, mailboxes_disabled=disabled)
    if disabled:
        return _("suspended; %(mailboxes)s being disabled", mailboxes=", ".join(disabled))
    return _("suspended")


def restore(actor: User, account: Account, user: User) -> str:
    """Undo ``suspend``: log-in allowed again, the personal mailboxes it disabled enabled again."""
    from portal.audit.models import AuditEvent
    from portal.domains.models import ENABLED as DOMAIN_ENABLED
    from portal.mailboxes import services as mailboxes
    from portal.mailboxes.models import DISABLED

    if not is_corporate_of(user, account):
        raise UserError(later("%(email)s is not a corporate user of this account.", email=user.email))
    require_outranks(actor, account, user, elsewhere=False)
    if user.suspended_at is None:
        return _("was not suspended")
    user.suspended_at = None
    # Only those the suspension disabled (its audit entry lists them): one disabled for another
    # reason (when they were removed, by hand) is enabled by a choice of its own, by someone who
    # may (a review: someone who may manage users enabled a mailbox kept disabled at a removal).
    suspension = db.session.execute(db.select(AuditEvent.details).where(
        AuditEvent.action == "user.suspend", AuditEvent.account_id == account.id, AuditEvent.target_type == "user",
        AuditEvent.target_id == str(user.id)).order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(1)).scalar()
    disabled_then = set((suspension or {}).get("mailboxes_disabled") or [])
    enabled = []
    for mailbox in own_mailboxes(user, account):
        if mailbox.address in disabled_then and mailbox.status == DISABLED and mailbox.domain.status == DOMAIN_ENABLED:
            mailboxes.set_active(actor, mailbox, True)
            enabled.append(mailbox.address)
    record("user.restore", account=account, target=user, actor=actor, mailboxes_enabled=enabled)
    if enabled:
        return _("restored; %(mailboxes)s being enabled", mailboxes=", ".join(enabled))
    return _("restored")


# -- removal -------------------------------------------------------------------------

MAILBOX_CHOICES = ("keep", "disable", "delete")


def may_delete_mailboxes(actor: User, account: Account) -> bool:
    """Whether ``actor`` (through their API token, if any) may delete the account's mailboxes."""
    return "mailboxes.manage" in handable(actor, account)


def remove_corporate_user(actor: User, account: Account, membership: Membership, mailbox_choice: str) -> list[str]:
    """Take a corporate user out of the account at once; their personal mailboxes kept,
    disabled or deleted as chosen. Returns what was done to each mailbox."""
    from portal.mailboxes import services as mailboxes

    user = membership.user
    if not is_corporate_of(user, account):
        raise UserError(later("Only corporate users of this account can be removed here."))
    if user.id == actor.id:
        raise UserError(later("You cannot remove yourself."))
    from portal.roles.services import require_may_remove

    require_may_remove(actor, account, membership)
    if mailbox_choice not in MAILBOX_CHOICES:
        raise UserError(later("Choose what happens to their mailboxes."))
    owned = own_mailboxes(user, account)
    if mailbox_choice == "delete" and not may_delete_mailboxes(actor, account) and any(
            mailbox.status in ("enabled", "disabled", "failed") for mailbox in owned):
        # Deleting a mailbox asks for "Manage mailboxes" (others may hold rights on it, and what
        # it holds goes): removing its owner does not give that (a review). Disabling, as a
        # suspension does, can be undone and stays open to whoever may manage users.
        if "mailboxes.manage" in account_permissions(actor, account):  # held, but not by the token used
            raise AccessError(later("Deleting their mailboxes needs the right to manage mailboxes, which this "
                                    "token's scopes do not reach: give it the mailboxes scope too, or keep or "
                                    "disable them instead."))
        raise AccessError(later("Deleting their mailboxes needs the right to manage mailboxes, which you do not "
                                "hold: keep or disable them instead."))
    outcome = []
    for mailbox in owned:
        if mailbox_choice == "keep" or mailbox.status not in ("enabled", "disabled", "failed"):
            outcome.append(_("%(address)s: kept", address=mailbox.address))
        elif mailbox_choice == "disable" and mailbox.status == "enabled":
            if mailboxes.capabilities_of(mailbox).mailbox_disable:
                mailboxes.set_active(actor, mailbox, False)
                outcome.append(_("%(address)s: being disabled", address=mailbox.address))
            else:
                outcome.append(_("%(address)s: kept (its backend cannot disable mailboxes)", address=mailbox.address))
        elif mailbox_choice == "delete":
            outcome.append(_("%(address)s: %(outcome)s", address=mailbox.address,
                             outcome=mailboxes.delete(actor, mailbox)))
    user.is_corporate, user.corporate_account_id = False, None
    sessions.end_all(user, sessions.REMOVED)  # their sessions end now
    record("user.remove_corporate", account=account, target=user, actor=actor, mailboxes=mailbox_choice)
    db.session.delete(membership)
    db.session.flush()
    return outcome

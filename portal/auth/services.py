"""Registration, log-in, verification and password rules."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from email_validator import EmailNotValidError
from flask import current_app
from flask_babel import gettext as _, ngettext
from flask_login import current_user
from sqlalchemy import delete, func

from portal.audit.services import record
from portal.auth import sessions, tokens
from portal.auth.addresses import address_problem, checked_address
from portal.auth.models import LoginFailure, User, UserToken
from portal.auth.passwords import hash_password, needs_rehash, password_problem, verify_password
from portal.extensions import db
from portal.i18n import _l, chosen, current_language
from portal.jobs.registry import handler
from portal.jobs.services import enqueue_once
from portal.mail.services import deliver_now, send
from portal.timeutil import utcnow


ADDRESS_MAIL_KIND = "auth.address_mail"
# Links asked for by address, by anyone: an address gets one at most every ADDRESS_MAIL_INTERVAL,
# an interval that doubles with each one mailed in the last day, up to ADDRESS_MAIL_LONGEST, for
# each purpose (a review: 25 anonymous requests mailed 25 links, each retiring the one before).
# No fixed daily number: a stranger using it up would lock the person out of a reset for the day.
# Within those, the link mailed last keeps working.
ADDRESS_MAIL_INTERVAL = timedelta(minutes=2)
ADDRESS_MAIL_LONGEST = timedelta(hours=1)
SUSPENDED_MESSAGE = _l("Your organisation has suspended your access to the portal. Ask its administrators.")


class AuthError(ValueError):
    """A refusal whose message can be shown as it is, beside ``field`` when it concerns one."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.code = code


def normalize_email(raw: str) -> str:
    """Lower-cased, IDNA-normalised address; raises AuthError with a readable reason."""
    try:
        # The domain is kept in its ASCII (IDNA) form, as domains are, so the two compare.
        return checked_address(raw.strip())
    except EmailNotValidError as error:
        raise AuthError(address_problem(error), "email") from None


def find_user(email: str) -> User | None:
    return db.session.execute(db.select(User).where(User.email == email.lower())).scalar_one_or_none()


def _settings() -> dict:
    return current_app.config["PORTAL"]


def any_user_exists() -> bool:
    return db.session.execute(db.select(User.id).limit(1)).first() is not None


def create_superadmin(email: str, name: str, password: str, *, source: str = "web") -> User:
    email = normalize_email(email)
    problem = password_problem(password, email)
    if problem:
        raise AuthError(problem, "password")
    if find_user(email):
        raise AuthError(_("A profile with this address already exists."), "email")
    user = User(email=email, name=name.strip(), password_hash=hash_password(password),
                is_superadmin=True, email_verified_at=utcnow(), address_proven_at=utcnow())
    db.session.add(user)
    db.session.flush()
    record("user.create_superadmin", target=user, actor=user, source=source)
    return user


def register(email: str, name: str, password: str) -> User | None:
    """Create an unverified profile and mail its verification link.

    An address that already has a profile gets a mail saying so instead, and
    the caller shows the same answer either way, so the form does not reveal
    who is registered.
    """
    email = normalize_email(email)
    problem = password_problem(password, email)
    if problem:
        raise AuthError(problem, "password")
    from portal.users import corporate

    try:
        corporate.check_registration_allowed(email)
    except corporate.RegistrationRefused as refusal:
        raise AuthError(str(refusal), "email") from None
    # Hashed either way, so that a registered address takes as long as a new one.
    password_hash = hash_password(password)
    existing = find_user(email)
    if existing is not None:
        send(existing.email, "already_registered", user=existing)
        return None
    from portal.mailboxes.services import received_by_a_mailbox

    if received_by_a_mailbox(email):
        # A mailbox's address, or one of its aliases: its readers would confirm the profile and hold
        # its password. Nothing is made, and the answer is the same as for any address.
        record("user.register_refused", target_label=email, actor=None, reason="a mailbox receives the address")
        return None
    # They read the portal in the language of the pages they registered on: their profile keeps it
    # (they change it there), so what it sends them is written in it too.
    user = User(email=email, name=name.strip(), password_hash=password_hash, locale=current_language())
    db.session.add(user)
    db.session.flush()
    send_verification(user)
    record("user.register", target=user, actor=user)
    return user


def send_verification(user: User) -> None:
    raw = tokens.issue(user, tokens.VERIFY_EMAIL, _settings()["TOKEN_HOURS"])
    send(user.email, "verify_email", user=user, token=raw, hours=_settings()["TOKEN_HOURS"])


def resend_verification(email: str) -> None:
    """Queue the look-up: the answer, and the time it takes, are the same for every address."""
    _queue_address_mail(email, tokens.VERIFY_EMAIL)


def _queue_address_mail(email: str, purpose: str) -> None:
    """One look-up waiting per address and purpose, however often it is asked for (the subject
    holds a digest of the address, not the address)."""
    try:
        address = normalize_email(email)
    except AuthError:
        return
    subject = f"{purpose}:{hashlib.sha256(address.encode()).hexdigest()[:40]}"
    enqueue_once(ADDRESS_MAIL_KIND, {"email": address, "purpose": purpose, "language": current_language()},
                 subject=subject)


def _mailed_lately(user: User, purpose: str) -> bool:
    """Whether ``user`` was mailed a link for ``purpose`` (or told it was withheld) too lately or
    too often to be mailed another now."""
    from portal.audit.models import AuditEvent

    now = utcnow()
    if purpose == tokens.RESET_PASSWORD:
        counted = (db.select(func.count(AuditEvent.id), func.max(AuditEvent.at)).where(
            AuditEvent.action.in_(("user.request_password_reset", "user.reset_withheld")),
            AuditEvent.target_type == "user", AuditEvent.target_id == str(user.id),
            AuditEvent.at >= now - timedelta(days=1)))
    else:
        counted = (db.select(func.count(UserToken.id), func.max(UserToken.created_at)).where(
            UserToken.user_id == user.id, UserToken.purpose == purpose,
            UserToken.created_at >= now - timedelta(days=1)))
    count, latest = db.session.execute(counted).one()
    if latest is None:
        return False
    wait = min(ADDRESS_MAIL_INTERVAL * 2 ** min(max(count - 1, 0), 10), ADDRESS_MAIL_LONGEST)
    return latest > now - wait


def verify_email(raw: str, *, password: str | None = None, new_password: str | None = None,
                 name: str | None = None, registered_here: bool = False) -> User | None:
    """Confirm the address of a registration through the link mailed to it.

    Whoever registered chose a password, and anyone may register anyone's address: opening the
    link proves the mailbox, not the password. So the link confirms the registration only in the
    browser that registered, or with the password chosen then; otherwise the person who opened it
    chooses a new password, and the one chosen at registration (a stranger's, perhaps) goes.
    None when the link is unknown, used or expired; AuthError when the password is wrong or weak.
    """
    token = tokens.peek(raw, tokens.VERIFY_EMAIL)
    if token is None:
        return None
    user = db.session.get(User, token.user_id)
    if user.is_verified:
        tokens.consume(raw, tokens.VERIFY_EMAIL)
        return user
    if not verifiable(user):
        tokens.consume(raw, tokens.VERIFY_EMAIL)
        return None
    if new_password is not None:
        problem = password_problem(new_password, user.email)
        if problem:
            raise AuthError(problem, "new_password")
    elif not registered_here and not verify_password(user.password_hash, password or ""):
        raise AuthError(_("This is not the password chosen when the address was registered. Choose a new "
                          "password below instead."), "password")
    if tokens.consume(raw, tokens.VERIFY_EMAIL) is None:
        return None
    if new_password is not None:
        _set_password(user, new_password)
        if name is not None:
            user.name = name.strip()  # whoever registered chose the one it had
    prove_address(user)
    record("user.verify_email", target=user, actor=user, new_password=new_password is not None)
    assign_if_corporate(user)
    return user


def verifiable(user: User) -> bool:
    """Whether a verification link may be mailed to, and used for, ``user``: only a registration
    nobody confirmed (it holds nothing yet). A person made by an account who never signed in has no
    password and gets an onboarding link, checked for who holds it; a verification link, which sets
    a new password, went round those checks (a review: a helper who read the mailbox of a person
    made Administrator asked for one and signed in as them)."""
    from portal.users.services import unconfirmed_registration

    return unconfirmed_registration(user)


def assign_if_corporate(user: User) -> None:
    """A proven address on an account's active domain joins that account (reference 004)."""
    from portal.accounts.models import Account
    from portal.users import corporate

    domain = corporate.active_domain_of(user.email)
    if domain is None:
        return
    # Registered before the domain was enabled (enabling it skips registrations nobody confirmed):
    # they would have joined then, whatever the account now says of self-registration.
    enabled = domain.enabled_at or domain.verified_at
    earlier = enabled is not None and user.created_at <= enabled
    if earlier or db.session.get(Account, domain.account_id).self_registration:
        corporate.make_corporate(user, domain, actor=user)


def _failures_since(since, **match) -> int:
    query = db.select(func.count()).select_from(LoginFailure).where(LoginFailure.at >= since)
    for column, value in match.items():
        query = query.where(getattr(LoginFailure, column) == value)
    return db.session.execute(query).scalar_one()


def authenticate(email: str, password: str, ip: str, device: str | None = None) -> User:
    """Check credentials under the failure limits; return the user or raise AuthError.

    The same work is done whether the address is registered or not (a password is always
    verified, against a decoy hash when there is none), so answers and timings are equal.
    Failures from a browser the person logged in from before (``device``, see ``devices``)
    are counted for that browser alone: a stranger's guesses lock strangers out, not the owner.
    """
    from portal.auth import devices

    settings = _settings()
    try:
        # As the address was kept when registered: a domain typed in Unicode is found by its ASCII form.
        email = normalize_email(email)
    except AuthError:
        email = email.strip().lower()[:254]  # counted as a failure all the same, under the same limits
    window = settings["LOGIN_WINDOW_MINUTES"]
    since = utcnow() - timedelta(minutes=window)
    user = find_user(email)
    trusted = devices.device_id_for(device, user)
    if trusted:
        if _failures_since(since, device=trusted) >= settings["LOGIN_MAX_FAILURES"]:
            raise AuthError(ngettext("Too many failed log-ins from this browser. Wait %(num)d minute, "
                                     "or reset your password.",
                                     "Too many failed log-ins from this browser. Wait %(num)d minutes, "
                                     "or reset your password.", window), code="rate_limited")
    elif _failures_since(since, email=email, device="") >= settings["LOGIN_MAX_FAILURES"]:
        raise AuthError(ngettext("Too many failed log-ins for this address. Wait %(num)d minute, "
                                 "or reset your password.",
                                 "Too many failed log-ins for this address. Wait %(num)d minutes, "
                                 "or reset your password.", window), code="rate_limited")
    # A browser the person logged in from before answers to its own count only: behind a proxy
    # every request comes from one address, and strangers' guesses there must not lock owners out.
    if not trusted and _failures_since(since, ip=ip[:64]) >= settings["LOGIN_MAX_FAILURES_PER_IP"]:
        raise AuthError(ngettext("Too many failed log-ins from your network. Wait %(num)d minute and try again.",
                                 "Too many failed log-ins from your network. Wait %(num)d minutes and try again.",
                                 window), code="rate_limited")
    if (not verify_password(user.password_hash if user is not None else None, password) or user is None
            or not user.is_verified):
        # A profile not confirmed yet answers as a wrong password does (the page says how to
        # confirm either way): someone who registered an address, then logged in with the password
        # they chose, learnt from a different answer that the address had no profile before.
        db.session.add(LoginFailure(email=email, ip=ip[:64], device=trusted or ""))
        db.session.commit()
        raise AuthError(_("That address and password do not match."))
    if user.suspended_at is not None:
        raise AuthError(str(SUSPENDED_MESSAGE), code="suspended")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def prove_address(user: User) -> None:
    """A link mailed to the person's address was opened (or a provider vouched for it): the address
    is proven. Where an account holds the name's proven copy, its mail server delivered that mail,
    so its people may have read it: the account's log keeps it (``user.address_proven``), and when
    another account proves the name later, the profile is taken over as one this account held
    (``domains.services._handed_over``; a review: a profile registered and confirmed through the
    former holder's mail, the domain not yet enabled there, kept its password under the new holder)."""
    from portal.domains import ownership

    user.prove_address()
    holder = ownership.proven_copy(user.email_domain)
    if holder is not None and ownership.holds(holder):
        record("user.address_proven", account=holder.account_id, target=user, actor=user)


# How the person of a session proved who they were (``UserSession.signed_in_with``).
WITH_PASSWORD = "password"
WITH_SECOND_FACTOR = "second_factor"
WITH_SINGLE_SIGN_ON = "single_sign_on"


def start_session(user: User, signed_in_with: str = WITH_PASSWORD) -> None:
    """Start ``user``'s session; the log-in counts as a confirmation of who they are."""
    row = sessions.start(user)
    row.signed_in_with, row.confirmed_at = signed_in_with, utcnow()
    user.last_login_at = utcnow()
    record("user.login", target=user, actor=user, signed_in_with=signed_in_with)


def record_session_end(user: User, which: str, **details) -> None:
    record("user.end_sessions", target=user, actor=user, which=which, **details)


def end_session() -> None:
    if current_user.is_authenticated:
        record("user.logout", target=current_user._get_current_object())
    sessions.end_current()


def request_password_reset(email: str) -> None:
    """Queue the look-up: the answer, and the time it takes, are the same for every address."""
    _queue_address_mail(email, tokens.RESET_PASSWORD)


@handler(ADDRESS_MAIL_KIND, max_attempts=20, backoff_seconds=30, backoff_cap_seconds=1800)
def mail_to_address(job) -> None:
    """A verification or reset link asked for by address. The token is made here and the mail
    delivered at once, so no usable link rests in the queue."""
    user = find_user(job.payload["email"])
    purpose = job.payload["purpose"]
    if user is None or (purpose == tokens.VERIFY_EMAIL and not verifiable(user)):
        return
    if _mailed_lately(user, purpose):
        return
    # Someone who never chose a language (and has no organisation's language) reads it in the one of
    # the page they asked from.
    mine = chosen(user.locale) or user.corporate_account_id is not None
    language = None if mine else chosen(job.payload.get("language"))
    if purpose == tokens.RESET_PASSWORD:
        given_to = reset_withheld(user)
        if given_to is not None:
            deliver_now(user.email, "reset_withheld", language=language, user=user, mailbox=given_to)
            record("user.reset_withheld", target=user, actor=user, mailbox=given_to.address)
            return
    hours = _settings()["TOKEN_HOURS"]
    raw = tokens.issue(user, purpose, hours)
    template = "verify_email" if purpose == tokens.VERIFY_EMAIL else "reset_password"
    deliver_now(user.email, template, language=language, user=user, token=raw, hours=hours)
    if purpose == tokens.RESET_PASSWORD:
        record("user.request_password_reset", target=user, actor=user)


def reset_withheld(user: User):
    """The mailbox receiving ``user``'s address that someone who does not hold every right ``user``
    holds may read, if any (see ``read_by_others``): a reset link mailed there would let that person
    take the profile over. Checked when a link is mailed and again when it is used (a review: a
    helper who read the mailbox before the person was made Administrator kept a link asked for then)."""
    return read_by_others(user.email, user)


def read_by_others(address: str, user: User):
    """The mailbox receiving ``address`` that someone may read who does not hold every right
    ``user`` holds now, if any. Its readers are whoever its password was last given to (who may
    have held those rights then), its owner if personal, and the person whose login address it is
    (a review: a member's own mailbox, whose password she had from her own page, took the owner's
    address as an alias through a domain alias, or became the catch-all). A suspended reader holds
    nothing meanwhile, yet keeps a password they were given: they count as lacking the rights."""
    from portal.accounts.models import Account
    from portal.mailboxes.models import DELETED
    from portal.mailboxes.services import readers_of, receiving, server_administrators
    from portal.roles.services import outranks

    # And the server's administrators: their password sets that of any mailbox there (a review: an
    # Owner made administrator of the server, then demoted, could still take the other Owner's).
    for mailbox in [*receiving(address), *server_administrators(address)]:
        if mailbox.status == DELETED:
            continue
        account = db.session.get(Account, mailbox.account_id)
        for reader in sorted(readers_of(mailbox) - {user.id}):
            person = db.session.get(User, reader)
            # Whoever was given its password before this profile existed is someone else, whose id
            # SQLite gave again (a review): they count as one without the rights.
            reused = reader == mailbox.password_given_to_id and mailbox.password_given_at is not None \
                and person is not None and person.created_at > mailbox.password_given_at
            if person is None or reused or person.suspended_at is not None or not outranks(person, account, user):
                return mailbox
    return None


def reset_link_problem(user: User) -> str | None:
    """Why a reset link mailed to ``user`` may not be used now, if so."""
    if reset_withheld(user) is not None:
        return _("Someone who does not hold every right you hold may now read the mail sent to your address, this "
                 "link among it. Ask for a new link: the e-mail says what to do.")
    return None


def reset_password(raw: str, password: str) -> User:
    token = tokens.peek(raw, tokens.RESET_PASSWORD)
    if token is None:
        raise AuthError(_("This reset link has expired or was already used. Ask for a new one."))
    user = db.session.get(User, token.user_id)
    refused = reset_link_problem(user)
    if refused:
        raise AuthError(refused)
    problem = password_problem(password, user.email)
    if problem:
        raise AuthError(problem, "password")
    if tokens.consume(raw, tokens.RESET_PASSWORD) is None:
        raise AuthError(_("This reset link has expired or was already used. Ask for a new one."))
    _set_password(user, password)
    # The link arrived in their mailbox: that proves the address too (and confirms a registration).
    confirming = not user.is_verified
    prove_address(user)
    if confirming:
        assign_if_corporate(user)
    # Whoever guessed at the password before no longer keeps the owner out.
    db.session.execute(delete(LoginFailure).where(LoginFailure.email == user.email))
    record("user.reset_password", target=user, actor=user)
    return user


def change_password(user: User, current: str, new: str) -> None:
    """A wrong current password counts as a wrong code or password at the confirmation does (the
    caller commits it though the change fails): a session someone else holds guesses no further
    than the limit of those."""
    from portal.security import services as security

    try:
        security.refuse_if_rate_limited(user)
    except security.SecurityError:
        raise AuthError(_("Too many wrong codes or passwords. Wait %(minutes)s minutes and try again.",
                          minutes=int(security.FAILURE_WINDOW.total_seconds() // 60)), "current") from None
    if not verify_password(user.password_hash, current):
        security.record_failure(user, "password", "password_change")
        raise AuthError(_("Your current password is not right."), "current")
    problem = password_problem(new, user.email)
    if problem:
        raise AuthError(problem, "password")
    _set_password(user, new)
    record("user.change_password", target=user)


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    sessions.end_all(user, sessions.PASSWORD_CHANGED)
    # A reset link asked for before the change would undo it: it stops working too.
    tokens.retire(user, tokens.RESET_PASSWORD)


def update_profile(user: User, name: str, timezone: str, locale: str | None = None) -> None:
    from portal.i18n import chosen

    changed = {}
    name = " ".join(name.split())
    locale = chosen(locale)
    if user.locale != locale:
        changed["locale"] = locale or ""
        user.locale = locale
    if user.name != name:
        changed["name"] = name
    if user.timezone != timezone:
        changed["timezone"] = timezone
    user.name, user.timezone = name, timezone
    if changed:
        record("user.update_profile", target=user, **changed)

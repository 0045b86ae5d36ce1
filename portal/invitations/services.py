"""Invitations: prepared as drafts, sent with a one-time link, answered once.

The link token is random (256 bits), kept only as a SHA-256 hash, expires,
and dies when the invitation is answered, resent or revoked. Access is
granted only on acceptance; a guarded UPDATE makes a double acceptance (two
tabs, a double click) grant once.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, or_, update

from portal.accounts.models import Account, Membership
from portal.accounts.services import add_member
from portal.audit.services import record
from portal.auth import tokens
from portal.auth.models import User
from portal.auth.services import AuthError, assign_if_corporate, find_user, normalize_email, prove_address
from portal.domains import ownership
from portal.extensions import db
from portal.invitations.models import (ACCEPTED, DECLINED, DRAFT, PENDING, REVOKED, Invitation,
                                       InvitationGrant, stored_offer)
from portal.mail.services import send
from portal.roles import catalogue
from portal.roles.models import Grant, Role
from portal.roles.services import (AccessError, _require_holds, _require_holds_on_mailbox, membership_of,
                                   require_owner_for, role_in_account)
from portal.timeutil import utcnow
from portal.users import corporate


class InvitationError(ValueError):
    """A refusal about an invitation; the message says what to do, ``field`` which field is wrong."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def lifetime() -> timedelta:
    return timedelta(days=current_app.config["PORTAL"]["INVITATION_DAYS"])


def invitation_in_account(account: Account, invitation_id: int) -> Invitation | None:
    invitation = db.session.get(Invitation, invitation_id)
    return invitation if invitation is not None and invitation.account_id == account.id else None


INVITATION_SORTS = ("created", "email", "status", "expires")


def invitation_query(account: Account, listing):
    """The account's invitations as ``listing`` filters and sorts them (expired is shown, never stored)."""
    from portal.web.lists import like

    query = db.select(Invitation).where(Invitation.account_id == account.id)
    now = utcnow()
    status = listing.filters.get("status")
    if status == "expired":
        query = query.where(Invitation.status == PENDING, Invitation.expires_at <= now)
    elif status == PENDING:
        query = query.where(Invitation.status == PENDING, Invitation.expires_at > now)
    elif status:
        query = query.where(Invitation.status == status)
    if listing.q:
        query = query.where(Invitation.email.like(like(listing.q), escape="\\"))
    column = {"created": Invitation.created_at, "email": Invitation.email, "status": Invitation.status,
              "expires": Invitation.expires_at}[listing.sort]
    return query.order_by(column.desc() if listing.descending else column.asc(), Invitation.id.desc())


def offer_labels(invitation_ids: list[int]) -> dict[int, str]:
    """What each invitation offers, as a list shows it: its offers' labels in the reader's
    language, joined (one statement for the page: the offers with their roles' names and
    mailboxes' addresses, not the labels kept when they were added, in their adder's language)."""
    from portal.invitations.models import offer_label
    from portal.mailboxes.models import Mailbox

    offers: dict[int, list[str]] = {}
    if invitation_ids:
        for invitation_id, kept, permission, on_mailbox, role_name, address in db.session.execute(
                db.select(InvitationGrant.invitation_id, InvitationGrant.label, InvitationGrant.permission,
                          InvitationGrant.on_mailbox, Role.name, Mailbox.address)
                .outerjoin(Role, Role.id == InvitationGrant.role_id)
                .outerjoin(Mailbox, Mailbox.id == InvitationGrant.mailbox_id)
                .where(InvitationGrant.invitation_id.in_(invitation_ids))
                .order_by(InvitationGrant.invitation_id, InvitationGrant.id)):
            offers.setdefault(invitation_id, []).append(offer_label(kept, role_name, permission, on_mailbox, address))
    return {invitation_id: ", ".join(texts) for invitation_id, texts in offers.items()}


# -- preparing ---------------------------------------------------------------------

def start(actor: User, account: Account, raw_email: str) -> Invitation:
    """A draft invitation for the address, or the open one it already has."""
    try:
        email = normalize_email(raw_email)
    except AuthError as error:
        raise InvitationError(str(error), field="email") from None
    existing_user = find_user(email)
    if existing_user is not None and membership_of(existing_user, account) is not None:
        raise InvitationError(_("%(email)s is already a member of this account.", email=email), field="email")
    _refuse_unusable_personal_mailbox(account, email)
    _refuse_read_by_others(email, account)  # said on the address field now, not only at sending
    open_one = db.session.execute(db.select(Invitation).where(
        Invitation.account_id == account.id, Invitation.email == email,
        Invitation.status.in_((DRAFT, PENDING)))).scalars().first()
    if open_one is not None:
        return open_one
    invitation = Invitation(account_id=account.id, email=email, invited_by_id=actor.id, status=DRAFT)
    db.session.add(invitation)
    db.session.flush()
    record("invitation.create", account=account, target=invitation, target_label=email)
    return invitation


def _refuse_unusable_personal_mailbox(account: Account, email: str) -> None:
    """Someone invited at an address on the account's active domain gets a personal mailbox on
    accepting (when the account gives them): refuse now an address its backend would refuse then."""
    domain = corporate.active_domain_of(email)
    if domain is None or domain.account_id != account.id or not account.personal_mailboxes:
        return
    try:
        ownership.address_for(account.id, domain, email.split("@", 1)[0], ownership.ROUTE, field="email")
    except ownership.NameRefused as refusal:
        if not ownership.address_taken(domain, email):
            raise InvitationError(_("No personal mailbox can have this address: %(reason)s", reason=refusal)) from None


# What an offer's kept label may hold: shown only once its role or mailbox is gone (``shown_label``).
LABEL_LIMIT = 300


def _check_grant(actor: User, account: Account, grant: InvitationGrant) -> None:
    if not grant.still_exists:
        return  # its role or mailbox is gone: it offers nothing (and anyone may take it away)
    offered = set(grant.role.permissions) if grant.role is not None else {grant.permission}
    if grant.on_mailbox:
        _require_holds_on_mailbox(actor, account, grant.mailbox_id, offered)
    else:
        _require_holds(actor, account, offered)
        require_owner_for(actor, account, grant.role)


def add_grant(actor: User, invitation: Invitation, *, role_id: int | None = None, permission: str | None = None,
              mailbox=None) -> InvitationGrant:
    if invitation.status not in (DRAFT, PENDING):
        raise InvitationError(_("This invitation was already answered or revoked."))
    account = db.session.get(Account, invitation.account_id)
    scope = catalogue.MAILBOX if mailbox is not None else catalogue.ACCOUNT
    role: Role | None = None
    if role_id:
        role = role_in_account(account, role_id)
        if role is None or role.scope != scope:
            raise InvitationError(_("Choose a mailbox role.") if mailbox else _("Choose an account role."))
        label = role.name
    elif permission in catalogue.codes(scope):
        label = str(catalogue.BY_CODE[permission].label)
    else:
        raise InvitationError(_("Choose a role or a permission."))
    if mailbox is not None:
        label = _("%(offer)s on %(mailbox)s", offer=label, mailbox=mailbox.address)
    grant = InvitationGrant(invitation_id=invitation.id, role_id=getattr(role, "id", None),
                            permission=None if role else permission, on_mailbox=mailbox is not None,
                            mailbox_id=getattr(mailbox, "id", None), label=label[:LABEL_LIMIT])
    grant.role, grant.mailbox = role, mailbox
    try:
        _check_grant(actor, account, grant)
    except AccessError as error:
        raise InvitationError(str(error)) from None
    if any(g.same_offer(grant) for g in invitation.grants):
        raise InvitationError(_("The invitation already offers %(offer)s.", offer=label))
    invitation.grants.append(grant)
    db.session.flush()
    return grant


def remove_grant(actor: User, invitation: Invitation, grant_id: int) -> None:
    """Take one offer away; only someone who could have offered it (an offer is someone's to make)."""
    if invitation.status not in (DRAFT, PENDING):
        raise InvitationError(_("This invitation was already answered or revoked."))
    grant = next((offer for offer in invitation.grants if offer.id == grant_id), None)
    if grant is None:
        raise InvitationError(_("That offer was already taken away."))
    _require_offers(actor, db.session.get(Account, invitation.account_id), [grant])
    invitation.grants = [g for g in invitation.grants if g.id != grant_id]


def _require_offers(actor: User, account: Account, grants) -> None:
    """``actor`` holds all these offers: to send, send again, withdraw or take one away."""
    for grant in grants:
        try:
            _check_grant(actor, account, grant)
        except AccessError as error:
            raise InvitationError(str(error)) from None


def _refuse_read_by_others(email: str, account: Account) -> None:
    """The link goes to whoever reads the address: refuse to mail it where someone else may.

    A mailbox of the portal that receives the address by name (at it, an alias, a domain alias)
    is read by whoever holds its password, now or after a reset: they would answer in the invitee's
    place and take the profile, and what the account later gives it. A catch-all receives it
    too; it is read by the people given its password (owners only) and, for a personal mailbox, its
    owner: it may carry the link only when each of them is an owner of this account. Someone
    who already has a profile at the address answers only once signed in as it: nothing to check.

    Only this account's mailboxes are looked at: who reads another account's is that account's to
    know, and refusing because of them would tell whoever invites that the address is a mailbox
    there. Such an address is mailed as any address outside the portal is."""
    from portal.mailboxes.models import DELETED
    from portal.mailboxes.services import read_by_non_owners, readers_of, received_addresses, receiving

    if find_user(email) is not None:
        return
    refusal = InvitationError(_("Mail to %(email)s reaches a mailbox other people may read: one of them could answer "
                                "the invitation instead of the person invited. Invite them at an address only they "
                                "read.", email=email), field="email")
    # By name: at the address, an alias or a domain alias, or name@ for name+tag@ (mail servers
    # deliver it there; a review: an invitation to team+boss@ waited in team@ for whoever was later
    # given its password, with no more than the right to take it).
    named = {mailbox.id for mailbox in receiving(email, catch_all=False)}
    for mailbox in receiving(email):
        if mailbox.status == DELETED or mailbox.account_id != account.id:
            continue
        by_name = mailbox.id in named or email in received_addresses(mailbox)
        if by_name or read_by_non_owners(readers_of(mailbox), account.id):  # a catch-all: owners alone
            raise refusal


def expire_links_to(addresses, account_id: int) -> int:
    """A mailbox or an alias of the account now receives these addresses: the account's pending
    invitations mailed there stop working (their links may now reach someone else); sending one
    again checks who reads it. How many. Another account's invitations are left as they are: who
    reads this account's mailboxes is no reason to stop them (``_refuse_read_by_others``), and
    ending them would tell that account what this one routes."""
    # Someone with a profile answers only signed in as it (a mailbox of their own at their address,
    # made when they joined, is no reason to end their invitations). name+tag@ reaches name@ too
    # (ending one that something else has by name costs a new sending, which checks who reads it).
    addresses = set(addresses)
    if not addresses:
        return 0
    names = sorted({address.rsplit("@", 1)[-1] for address in addresses})
    # The account's pending invitations at these names (a statement per 200 names), matched here:
    # one LIKE per address made an expression SQLite refuses past a thousand (a review: setting a
    # catch-all with a thousand invitations pending answered 500).
    found: list[int] = []
    now = utcnow()
    for start in range(0, len(names), 200):
        at_names = [Invitation.email.like(f"%@{_like_escaped(name)}", escape="\\") for name in names[start:start + 200]]
        rows = db.session.execute(db.select(Invitation.id, Invitation.email).where(
            Invitation.account_id == account_id, Invitation.status == PENDING, Invitation.expires_at > now,
            or_(*at_names), ~db.exists().where(User.email == Invitation.email))).all()
        found += [invitation_id for invitation_id, email in rows if email in addresses or _untagged(email) in addresses]
    for start in range(0, len(found), 500):
        db.session.execute(update(Invitation).where(Invitation.id.in_(found[start:start + 500])).values(
            expires_at=now).execution_options(synchronize_session=False))
    return len(found)


def _untagged(address: str) -> str:
    local, _at, name = address.rpartition("@")
    return f"{local.split('+', 1)[0]}@{name}"


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- sending -------------------------------------------------------------------------

def _issue_link(invitation: Invitation) -> str:
    raw = secrets.token_urlsafe(32)
    invitation.token_hash = tokens.digest(raw)
    invitation.expires_at = utcnow() + lifetime()
    invitation.sent_at = utcnow()
    return raw


def _mail_invitation(invitation: Invitation, raw: str) -> None:
    account = db.session.get(Account, invitation.account_id)
    registered = find_user(invitation.email) is not None
    # Someone with a profile reads it in their language; anyone else in the account's.
    send(invitation.email, "invitation", for_account=account, language=None if registered else account.default_locale,
         account=account, invitation=invitation, token=raw, registered=registered, inviter=invitation.invited_by,
         days=lifetime().days)


def send_invitation(actor: User, invitation: Invitation) -> None:
    if invitation.status != DRAFT:
        raise InvitationError(_("This invitation was already sent; resend it for a new link."))
    account = db.session.get(Account, invitation.account_id)
    _require_offers(actor, account, invitation.grants)
    _refuse_read_by_others(invitation.email, account)
    invitation.status = PENDING
    invitation.invited_by_id = actor.id
    _mail_invitation(invitation, _issue_link(invitation))
    record("invitation.send", account=account, target=invitation, target_label=invitation.email,
           offers=[stored_offer(g) for g in invitation.grants])


def resend(actor: User, invitation: Invitation) -> None:
    """A new link and a new expiry; the old link stops working."""
    if invitation.status != PENDING:
        raise InvitationError(_("Only a pending or expired invitation can be sent again."))
    account = db.session.get(Account, invitation.account_id)
    _require_offers(actor, account, invitation.grants)
    _refuse_read_by_others(invitation.email, account)
    _mail_invitation(invitation, _issue_link(invitation))
    record("invitation.resend", account=invitation.account_id, target=invitation, target_label=invitation.email)


def revoke(actor: User, invitation: Invitation) -> None:
    if invitation.status not in (DRAFT, PENDING):
        raise InvitationError(_("This invitation was already answered or revoked."))
    _require_offers(actor, db.session.get(Account, invitation.account_id), invitation.grants)
    # The hash stays, so the dead link can still say it was withdrawn.
    invitation.status = REVOKED
    invitation.responded_at = utcnow()
    record("invitation.revoke", account=invitation.account_id, target=invitation, target_label=invitation.email)


# -- answering ---------------------------------------------------------------------

def by_token(raw: str) -> Invitation | None:
    """The invitation a link belongs to, whatever its state (the page says what it means)."""
    if not raw or len(raw) > 128:
        return None
    return db.session.execute(db.select(Invitation).where(Invitation.token_hash == tokens.digest(raw))
                              ).scalar_one_or_none()


def is_open(invitation: Invitation | None) -> bool:
    return invitation is not None and invitation.status == PENDING and invitation.expires_at > utcnow()


# The invitations the profile's Invites tab shows at once (those sent first): answering them shows
# the next ones.
MINE_SHOWN = 50


def pending_for(user: User, limit: int = MINE_SHOWN) -> tuple[list[Invitation], int]:
    """The first ``limit`` invitations waiting for ``user``'s answer, and how many wait in all."""
    waiting = (Invitation.email == user.email, Invitation.status == PENDING, Invitation.expires_at > utcnow())
    shown = list(db.session.execute(db.select(Invitation).where(*waiting)
                                    .order_by(Invitation.sent_at, Invitation.id).limit(limit)).scalars())
    total = len(shown) if len(shown) < limit else db.session.execute(
        db.select(func.count()).select_from(Invitation).where(*waiting)).scalar_one()
    return shown, total


def invitation_for_user(user: User, invitation_id: int) -> Invitation | None:
    invitation = db.session.get(Invitation, invitation_id)
    return invitation if invitation is not None and invitation.email == user.email else None


def _answer(invitation: Invitation, user: User | None, status: str) -> None:
    """Move pending -> ``status`` once; a second answer (another tab) is refused. ``user`` None: a
    decline by the link of someone without a profile."""
    changed = db.session.execute(update(Invitation).where(
        Invitation.id == invitation.id, Invitation.status == PENDING, Invitation.expires_at > utcnow()
    ).values(status=status, responded_at=utcnow(), user_id=user.id if user is not None else None)).rowcount
    if changed != 1:
        db.session.rollback()
        raise InvitationError(_("This invitation was already answered, revoked or has expired."))
    db.session.refresh(invitation)


def _require_link(user: User, invitation: Invitation, by_link: bool) -> None:
    """Answering needs the address proven: by the invitation's link, mailed to it, or before.

    A profile's password may have been set through an onboarding link shown to an administrator
    (or mailed to a recovery address they chose): signing in as it proves nothing about who reads
    the address, and an invitation (this account's or another's) is for whoever does."""
    if invitation.email != user.email:
        raise InvitationError(_("This invitation is for another address."))
    if not by_link and not user.address_proven:
        raise InvitationError(_("Open the link in the invitation e-mailed to %(email)s to answer it: it shows the "
                                "address is yours.", email=invitation.email))


def accept(user: User, invitation: Invitation, *, by_link: bool = False) -> list[str]:
    """Grant what the invitation offers; return the labels of offers that no longer exist.
    ``by_link``: the person opened the invitation's link in this session (which proves the address)."""
    _require_link(user, invitation, by_link)
    _answer(invitation, user, ACCEPTED)
    prove_address(user)
    account = db.session.get(Account, invitation.account_id)
    membership = add_member(account, user)
    gone = []
    inviter = invitation.invited_by
    for offer in invitation.grants:
        if not offer.still_exists or not _inviter_still_holds(inviter, account, offer):
            gone.append(offer.shown_label)
            continue
        _grant_once(membership, offer, invitation.invited_by_id)
    domain = corporate.active_domain_of(user.email)
    if domain is not None and domain.account_id == account.id:
        corporate.make_corporate(user, domain, actor=user)
    record("invitation.accept", account=account, target=invitation, actor=user, target_label=invitation.email,
           granted=[g.label for g in invitation.grants if g.still_exists], gone=gone)
    _tell_inviter(invitation, account, user, accepted=True)
    return gone


def _inviter_still_holds(inviter: User | None, account: Account, offer: InvitationGrant) -> bool:
    """Nobody grants what they do not hold: checked again when the offer is taken up."""
    if inviter is None:
        return False
    try:
        _check_grant(inviter, account, offer)
    except AccessError:
        return False
    return True


def _grant_once(membership: Membership, offer: InvitationGrant, granted_by: int | None) -> None:
    query = db.select(Grant.id).where(Grant.membership_id == membership.id)
    query = query.where(Grant.mailbox_id == offer.mailbox_id if offer.on_mailbox else Grant.mailbox_id.is_(None))
    query = query.where(Grant.role_id == offer.role_id if offer.role_id else Grant.permission == offer.permission)
    if db.session.execute(query).first() is None:
        db.session.add(Grant(membership_id=membership.id, account_id=membership.account_id,
                             role_id=offer.role_id, permission=None if offer.role_id else offer.permission,
                             mailbox_id=offer.mailbox_id if offer.on_mailbox else None, granted_by_id=granted_by))


def decline(user: User, invitation: Invitation, *, by_link: bool = False) -> None:
    _require_link(user, invitation, by_link)
    _answer(invitation, user, DECLINED)
    account = db.session.get(Account, invitation.account_id)
    record("invitation.decline", account=account, target=invitation, actor=user, target_label=invitation.email)
    _tell_inviter(invitation, account, user, accepted=False)


def decline_by_link(raw_token: str) -> Invitation:
    """Decline through the invitation's link, without a profile: the link was mailed to the address,
    so whoever opened it reads the address's mail, as for registering from it. Nothing is made."""
    invitation = by_token(raw_token)
    if not is_open(invitation):
        raise InvitationError(_("This invitation link no longer works."))
    if find_user(invitation.email) is not None:
        # A person with a profile answers signed in as it: an invitation to them is sent without
        # asking who else reads the address (``_refuse_read_by_others``), so the link alone is not them.
        raise InvitationError(_("This address already has a profile: log in to answer the invitation."))
    _answer(invitation, None, DECLINED)
    account = db.session.get(Account, invitation.account_id)
    # Whoever opened the link, not whoever may be signed in in this browser.
    record("invitation.decline", account=account, target=invitation, actor_label=invitation.email,
           target_label=invitation.email, via="link")
    _tell_inviter(invitation, account, None, accepted=False)
    return invitation


def _tell_inviter(invitation: Invitation, account: Account, user: User | None, *, accepted: bool) -> None:
    inviter = invitation.invited_by
    if inviter is not None:
        send(inviter.email, "invitation_answered", for_account=account, account=account, invitation=invitation,
             invitee=user, accepted=accepted, inviter=inviter)


def register_and_accept(raw_token: str, name: str, password: str) -> tuple[User, list[str]]:
    """Create the invited person's profile (address fixed, proven by the link) and accept."""
    from portal.auth.passwords import hash_password, password_problem

    invitation = by_token(raw_token)
    if not is_open(invitation):
        raise InvitationError(_("This invitation link no longer works."))
    if find_user(invitation.email) is not None:
        raise InvitationError(_("This address already has a profile: log in to answer the invitation."))
    # On a domain another account proved, a new profile is that account's to allow, as for any
    # registration there (it may be disabled, or closed to self-registration); allowed, the person
    # is its corporate user, as when they register on their own.
    domain = corporate.claimed_domain(invitation.email)
    elsewhere = domain is not None and domain.account_id != invitation.account_id
    if elsewhere:
        try:
            corporate.check_registration_allowed(invitation.email)
        except corporate.RegistrationRefused as refusal:
            raise InvitationError(str(refusal)) from None
    problem = password_problem(password, invitation.email)
    if problem:
        raise AuthError(problem, "password")
    user = User(email=invitation.email, name=name.strip(), password_hash=hash_password(password),
                email_verified_at=utcnow(), address_proven_at=utcnow())
    db.session.add(user)
    db.session.flush()
    record("user.register", account=invitation.account_id, target=user, actor=user, via="invitation")
    gone = accept(user, invitation, by_link=True)
    if elsewhere:
        assign_if_corporate(user)
    return user, gone


def withdraw_for(user: User) -> int:
    """Revoke every open invitation to the user's address (their profile is going)."""
    count = 0
    for invitation in db.session.execute(db.select(Invitation).where(
            Invitation.email == user.email, Invitation.status.in_((DRAFT, PENDING)))).scalars():
        invitation.status = REVOKED
        count += 1
    return count

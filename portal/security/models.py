"""What a person's second factors are, stored so that a copy of the database signs nobody in:
the authenticator app's secret is sealed, recovery codes are kept as hashes, and a passkey is
only a public key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utcnow


class AuthenticatorApp(db.Model):
    """The person's authenticator app (TOTP, RFC 6238): one per person. Until a first code
    confirms it (``confirmed_at``), it is an enrolment in progress and signs nobody in."""

    __tablename__ = "authenticator_apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    # The time step of the last code accepted: a code of that step or an earlier one is refused.
    last_used_step: Mapped[int] = mapped_column(BigInteger, default=0)
    last_used_at: Mapped[datetime | None]


class Passkey(db.Model):
    """A WebAuthn credential registered by the person for one relying party (the portal's host)."""

    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    credential_id: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # Authenticators count their signatures (an unsigned 32-bit number); a count that does not
    # grow betrays a cloned authenticator. Many passkeys always say 0.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    rp_id: Mapped[str] = mapped_column(String(253))
    transports: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]


class RecoveryCode(db.Model):
    """One of the person's recovery codes, kept as the SHA-256 of a random 80-bit code."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class FactorFailure(db.Model):
    """A wrong code or password given for a person at the second step or on the confirmation
    page, counted over a sliding window to stop guessing."""

    __tablename__ = "factor_failures"
    __table_args__ = (Index("ix_factor_failures_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)

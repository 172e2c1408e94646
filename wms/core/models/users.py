import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_login import UserMixin

from wms.extensions import db

from ._base import TimestampMixin, utcnow

ROLES = ("admin", "operator")
_hasher = PasswordHasher()
_DUMMY_HASH = None


def configure_hasher(**parameters):
    """Swap the Argon2 parameters (tests use cheap ones; production keeps argon2-cffi's defaults)."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(**parameters)
    _DUMMY_HASH = None


class User(UserMixin, TimestampMixin, db.Model):
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(255), unique=True, nullable=False)
    name = db.Column(db.String(120), nullable=False, default="")
    password_hash = db.Column(db.String(255), nullable=False)
    role = db.Column(db.String(20), nullable=False, default="operator")
    is_active_user = db.Column(db.Boolean, nullable=False, default=True)

    __table_args__ = (db.CheckConstraint("role in ('admin', 'operator')", name="role"),)

    @property
    def is_active(self):
        return self.is_active_user

    @property
    def is_admin(self):
        return self.role == "admin"

    def set_password(self, password):
        self.password_hash = _hasher.hash(password)

    def check_password(self, password):
        try:
            ok = _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        if ok and _hasher.check_needs_rehash(self.password_hash):
            self.set_password(password)
        return ok

    @staticmethod
    def burn_password_check(password):
        """Spend the time a real check takes, so an unknown email cannot be told apart by timing."""
        global _DUMMY_HASH
        if _DUMMY_HASH is None:
            _DUMMY_HASH = _hasher.hash("not a password")
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass

    def __repr__(self):
        return f"<User {self.email} {self.role}>"


class ApiToken(db.Model):
    """A per-user token for /api/v1. Only its SHA-256 is stored; the token is shown once."""

    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("user.id"), nullable=False, index=True)
    name = db.Column(db.String(120), nullable=False)
    token_hash = db.Column(db.String(64), unique=True, nullable=False)
    prefix = db.Column(db.String(12), nullable=False)
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    last_used_at = db.Column(db.DateTime)
    revoked_at = db.Column(db.DateTime)

    user = db.relationship("User")

    @staticmethod
    def hash(token):
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name):
        token = "wms_" + secrets.token_urlsafe(32)
        row = cls(user=user, name=name, token_hash=cls.hash(token), prefix=token[:10])
        return row, token


class LoginFailure(db.Model):
    """A failed sign-in, counted per email and per client address to slow down guessing."""

    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(255), nullable=False, index=True)
    address = db.Column(db.String(64), nullable=False, index=True)
    at = db.Column(db.DateTime, nullable=False, default=utcnow, index=True)

"""Accounts and their AccessKeys: creation, secret lookup, and the nonce memory of signed calls."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from controller.context import ControllerContext
from controller.errors import AccessKeyInactive, AccessKeyNotFound, AccountNameTaken, AccountNotFound, InvalidParameter
from controller.ids import new_access_key_id, new_account_id, new_secret
from controller.money import amount_micro, check_balance_micro
from controller.tables import AccessKey, Account, SeenNonce


@dataclass(frozen=True)
class NewAccount:
    account_id: str
    access_key_id: str
    access_key_secret: str

    def as_json(self) -> dict[str, str]:
        return {
            "AccountId": self.account_id,
            "AccessKeyId": self.access_key_id,
            "AccessKeySecret": self.access_key_secret,
        }


def create_account(
    ctx: ControllerContext, name: str, *, balance: Decimal = Decimal(0), real_name_verified: bool = False
) -> NewAccount:
    """Create an account with one AccessKey. The secret is shown here once and stored sealed."""
    now = ctx.clock.now_us()
    account = Account(
        id=new_account_id(), name=name, balance_micro=amount_micro(balance, name="Balance"),
        real_name_verified=real_name_verified, created_us=now,
    )
    key_id, secret = new_access_key_id(), new_secret()
    try:
        with ctx.db.write() as session:
            session.add(account)
            session.flush()
            session.add(AccessKey(access_key_id=key_id, account_id=account.id,
                                  secret_ciphertext=ctx.box.seal(secret), created_us=now))
    except IntegrityError:
        raise AccountNameTaken(f"An account named {name!r} already exists; choose another name.") from None
    return NewAccount(account.id, key_id, secret)


def create_access_key(ctx: ControllerContext, account_id: str) -> NewAccount:
    key_id, secret = new_access_key_id(), new_secret()
    with ctx.db.write() as session:
        if session.get(Account, account_id) is None:
            raise InvalidParameter(f"No account {account_id!r}.", detail="AccountId")
        session.add(AccessKey(access_key_id=key_id, account_id=account_id,
                              secret_ciphertext=ctx.box.seal(secret), created_us=ctx.clock.now_us()))
    return NewAccount(account_id, key_id, secret)


def _no_such_account(account_id: str) -> AccountNotFound:
    return AccountNotFound(f"No account {account_id!r}; GET /admin/v1/accounts lists them.")


def existing_account(ctx: ControllerContext, account_id: str) -> Account:
    with ctx.db.read() as session:
        account = session.get(Account, account_id)
    if account is None:
        raise _no_such_account(account_id)
    return account


def top_up(ctx: ControllerContext, account_id: str, amount: Decimal) -> Account:
    """Add ``amount`` CNY (negative to correct) to a balance, refusing one that would leave the allowed range."""
    change = amount_micro(amount, name="Amount")
    with ctx.db.write() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise _no_such_account(account_id)
        account.balance_micro = check_balance_micro(account.balance_micro + change, name="Amount")
        session.add(account)
    return account


@dataclass(frozen=True)
class KeyOwner:
    account_id: str
    secret: str


class KeyRing:
    """AccessKey lookups; decrypted secrets are cached in memory (keys are never edited, only disabled)."""

    def __init__(self, ctx: ControllerContext) -> None:
        self._ctx = ctx
        self._cache: dict[str, KeyOwner] = {}

    def owner(self, access_key_id: str) -> KeyOwner:
        cached = self._cache.get(access_key_id)
        if cached is not None:
            return cached
        with self._ctx.db.read() as session:
            key = session.get(AccessKey, access_key_id)
        if key is None:
            raise AccessKeyNotFound("Specified access key is not found; check the AccessKeyId you sign with.")
        if not key.enabled:
            raise AccessKeyInactive("Specified access key is disabled; ask the operator for an active key.")
        owner = KeyOwner(key.account_id, self._ctx.box.open(key.secret_ciphertext))
        self._cache[access_key_id] = owner
        return owner

    def secret(self, access_key_id: str) -> str:
        return self.owner(access_key_id).secret

    def forget(self, access_key_id: str) -> None:
        self._cache.pop(access_key_id, None)


_INSERT_NONCE = insert(SeenNonce.__table__)


def remember_nonce(ctx: ControllerContext, access_key_id: str, nonce: str, seen_us: int, *, durable: bool = True) -> bool:
    """Record a nonce; False when it was already used (the primary key refuses the second insert).

    ``durable=False`` is for read-only actions, whose replay changes nothing: checked without a write,
    and stored in batches (``controller.read_nonces``).
    """
    if not durable:
        return ctx.read_nonces.remember(access_key_id, nonce, seen_us)
    try:
        with ctx.db.write_connection() as conn:  # Core, not the ORM: every request
            conn.execute(_INSERT_NONCE, {"access_key_id": access_key_id, "nonce": nonce, "seen_us": seen_us})
    except IntegrityError:
        return False
    return True


def forget_nonces_before(ctx: ControllerContext, cutoff_us: int) -> int:
    """Drop nonces older than the signature window: a request that old is refused by its timestamp."""
    with ctx.db.write() as session:
        result = session.execute(delete(SeenNonce).where(SeenNonce.seen_us < cutoff_us))
    return result.rowcount or 0


def list_accounts(ctx: ControllerContext) -> list[Account]:
    with ctx.db.read() as session:
        return list(session.exec(select(Account).order_by(Account.created_us)).all())

"""What every part of the controller is handed: settings, database, clock, secret box."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.clock import Clock, SystemClock
from controller.db import Database
from controller.key_store import SecretBox, secret_box
from controller.read_nonces import ReadNonceBook
from controller.settings import ControllerSettings


@dataclass
class ControllerContext:
    settings: ControllerSettings
    db: Database
    box: SecretBox
    clock: Clock = field(default_factory=SystemClock)
    read_nonces: ReadNonceBook | None = None

    def __post_init__(self) -> None:
        if self.read_nonces is None:
            window_us = round(self.settings.api.signature_window_s * 1_000_000)
            self.read_nonces = ReadNonceBook(self.db, window_us=window_us)

    @classmethod
    def open(cls, settings: ControllerSettings, clock: Clock | None = None, *, migrate: bool = True) -> ControllerContext:
        db = Database(settings.db_url)
        if migrate:
            db.migrate()
            db.refresh_statistics()
        context = cls(settings=settings, db=db, box=secret_box(settings), clock=clock or SystemClock())
        context.check_master_key()
        return context

    def check_master_key(self) -> None:
        """Fail at start-up, not on the first request, when the master key cannot open stored secrets."""
        from sqlmodel import select

        from controller.tables import AccessKey

        with self.db.read() as session:
            sample = session.exec(select(AccessKey.secret_ciphertext).limit(1)).first()
        if sample is not None:
            try:
                self.box.open(sample)
            except ValueError:
                raise ValueError(
                    "the master key does not open the AccessKey secrets stored in this database; "
                    "start with the master key they were sealed with (EAIS_MASTER_KEY or STATE_DIR/master.key)"
                ) from None

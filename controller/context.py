"""What every part of the controller is handed: settings, database, clock, secret box."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.clock import Clock, SystemClock
from controller.db import Database
from controller.key_store import SecretBox, secret_box
from controller.settings import ControllerSettings


@dataclass
class ControllerContext:
    settings: ControllerSettings
    db: Database
    box: SecretBox
    clock: Clock = field(default_factory=SystemClock)

    @classmethod
    def open(cls, settings: ControllerSettings, clock: Clock | None = None, *, migrate: bool = True) -> ControllerContext:
        db = Database(settings.db_url)
        if migrate:
            db.migrate()
            db.refresh_statistics()
        return cls(settings=settings, db=db, box=secret_box(settings), clock=clock or SystemClock())

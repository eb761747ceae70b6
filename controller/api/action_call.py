"""The one argument every action handler takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.context import ControllerContext


@dataclass(frozen=True)
class ActionCall:
    ctx: ControllerContext
    account_id: str
    params: Mapping[str, str]
    request_id: str

"""Options every service command takes, and the session they add up to (credentials, client, output format)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from alibabacloud_eais20190624.client import Client

from eais_cli.credentials import Choices, Credentials, resolve
from eais_cli.output import OutputFormat
from eais_cli.service import calling, client_for

T = TypeVar("T")

Profile = Annotated[str, typer.Option("--profile", help="profile of ~/.aliyun/config.json (the aliyun CLI's)")]
CredentialsFile = Annotated[Path | None, typer.Option(
    "--credentials", help="credentials JSON written by `eais up` (default: .eais-up/ or .eais-run/credentials.json)")]
Endpoint = Annotated[str, typer.Option("--endpoint", help="EAIS API host:port (default: EAIS_ENDPOINT, the eais up "
                                       "file's, 127.0.0.1:8080)")]
Region = Annotated[str, typer.Option("--region", help="region (default: ALIBABA_CLOUD_REGION_ID, the profile's, "
                                     "cn-hangzhou)")]
Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="table for people, json for scripts")]
Wait = Annotated[bool, typer.Option("--wait", help="follow the status until the target (progress on stderr)")]
Timeout = Annotated[float, typer.Option("--timeout", help="seconds --wait waits at most", min=1)]


@dataclass
class Session:
    creds: Credentials
    output: OutputFormat

    @cached_property
    def client(self) -> Client:
        return client_for(self.creds)

    @property
    def region(self) -> str:
        return self.creds.region_id

    @property
    def json(self) -> bool:
        return self.output is OutputFormat.json

    def call(self, act: Callable[[Client], T]) -> T:
        return calling(self.creds.endpoint, lambda: act(self.client))


def session(profile: str, credentials: Path | None, endpoint: str, region: str, output: OutputFormat) -> Session:
    return Session(resolve(Choices(profile, credentials, endpoint, region)), output)

"""Clients that hang up: no ERROR in the log, and a request that had arrived whole still does its work."""

from __future__ import annotations

import hashlib
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import psycopg
import pytest
from sqlmodel import select

from controller.tables import Instance
from tests.api.sdk_capture import acs3_request_signed_by_sdk
from tests.fleet_rows import add_node

TYPE = "eais.ei-a6.2xlarge"
def signed_create_eai(endpoint: str, account) -> bytes:
    """A CreateEai the v3 SDK's signer signed, as the bytes of one HTTP request."""
    query = {"RegionId": "cn-hangzhou", "InstanceType": TYPE, "InstanceName": "after-hang-up"}
    headers = {"host": endpoint, "x-acs-action": "CreateEai", "x-acs-version": "2019-06-24",
               "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "x-acs-signature-nonce": f"n-{time.time_ns()}",
               "x-acs-content-sha256": hashlib.sha256(b"").hexdigest()}
    request = acs3_request_signed_by_sdk(headers, query, ak=account.access_key_id, secret=account.access_key_secret)
    target = "/?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in request.query)
    lines = [f"POST {target} HTTP/1.1", *(f"{k}: {v}" for k, v in request.headers.items()), "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@contextmanager
def database_writes_held(db_url: str) -> Iterator[None]:
    """Hold off every write of the controller (from another connection) until the block ends."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    with psycopg.connect(db_url) as conn:
        conn.execute("LOCK TABLE seen_nonces IN EXCLUSIVE MODE")  # the first thing a signed request writes
        yield
        conn.rollback()


def instances_named(ctx, name: str) -> list[Instance]:
    with ctx.db.read() as session:
        return list(session.exec(select(Instance).where(Instance.name == name)).all())


def test_a_create_whose_client_hung_up_while_it_waited_still_creates_the_instance(live_api, account, log):
    add_node(live_api.ctx, slices={TYPE: 1})
    with database_writes_held(live_api.ctx.settings.db_url):
        conn = socket.create_connection(tuple(live_api.endpoint.split(":")))  # type: ignore[arg-type]
        conn.sendall(signed_create_eai(live_api.endpoint, account))
        time.sleep(0.5)  # the request is read whole and waits for the database
        conn.close()
    deadline = time.monotonic() + 15
    while not instances_named(live_api.ctx, "after-hang-up") and time.monotonic() < deadline:
        time.sleep(0.05)

    assert len(instances_named(live_api.ctx, "after-hang-up")) == 1
    assert log.errors() == []


@pytest.mark.sqlite_only
@pytest.mark.parametrize("path", ["/", "/admin/v1/accounts"])
def test_a_client_that_hangs_up_mid_body_leaves_no_error_in_the_log(live_api, log, path):
    conn = socket.create_connection(tuple(live_api.endpoint.split(":")))  # type: ignore[arg-type]
    conn.sendall(f"POST {path} HTTP/1.1\r\nHost: e\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 "Content-Length: 5000\r\n\r\nAction=Describe".encode())
    time.sleep(0.3)
    conn.close()
    time.sleep(0.5)

    answered = httpx.post(f"http://{live_api.endpoint}/?Action=DescribeEais")  # and the server goes on serving
    assert answered.json()["Code"] == "IncompleteSignature"
    assert log.errors() == []

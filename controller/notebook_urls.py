"""DescribeEais ``JupyterUrl``: a notebook's address with its token, for the account that owns it.

Only DescribeEais (scoped to the caller's account) renders it, and only while the instance is InUse
and its VM reports the server answering for the current attachment: a stopped or failed notebook
shows no URL. The token is the whole credential of the server, so nothing else (console, admin API,
logs, transitions) ever shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, bindparam, select

from controller.key_store import SecretBox
from controller.states import CATEGORY_JUPYTER, Status
from controller.tables import Notebook

_SERVERS = select(Notebook.instance_id, Notebook.server_url, Notebook.server_attachment_id,
                  Notebook.token_ciphertext).where(Notebook.instance_id.in_(bindparam("ids", expanding=True)))


def notebook_urls(conn: Connection, box: SecretBox, rows: Sequence[Any]) -> dict[str, str]:
    """``{instance id: "http://host:port/?token=..."}`` for the running notebooks among ``rows`` (instances)."""
    running = {row.id: row.attachment_id for row in rows if row.category == CATEGORY_JUPYTER and row.status == Status.IN_USE}
    if not running:
        return {}
    urls: dict[str, str] = {}
    for instance_id, url, attachment_id, token_ciphertext in conn.execute(_SERVERS, {"ids": list(running)}):
        if url and attachment_id and attachment_id == running[instance_id]:
            urls[instance_id] = f"{url}?token={quote(box.open(token_ciphertext), safe='')}"
    return urls

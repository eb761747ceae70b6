"""The notebooks a VM hosts, as its desired state names them (VmDesiredState.notebooks in agents.proto).

A notebook is listed for its VM as long as its instance exists, so the agent keeps its files while it
is stopped and removes them once it is deleted (no longer listed). Its server runs (``serve``) only
while the instance is Attaching or InUse bound to that very VM; only then is the token handed out.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from sqlmodel import Session, select

from controller.db import in_chunks
from controller.key_store import SecretBox
from controller.states import SERVING
from controller.tables import Instance, Notebook


@dataclass(frozen=True, slots=True)
class NotebookGrant:
    """A notebook this VM hosts; ``serve`` while its instance is Attaching or InUse on this VM (token set then)."""

    instance_id: str
    serve: bool
    token: str
    attachment_id: str
    environment: tuple[tuple[str, str], ...]


def notebook_grants(
    session: Session, client_instance_ids: Collection[str], box: SecretBox
) -> dict[str, tuple[NotebookGrant, ...]]:
    """Each VM's notebooks, ordered by instance id, in a query per chunk of VMs."""
    found: dict[str, list[NotebookGrant]] = {}
    for chunk in in_chunks(client_instance_ids):
        rows = session.exec(
            select(Notebook, Instance).join(Instance, Instance.id == Notebook.instance_id)
            .where(Notebook.client_instance_id.in_(chunk)).order_by(Notebook.instance_id)
        ).all()
        for notebook, instance in rows:
            found.setdefault(notebook.client_instance_id, []).append(_grant(notebook, instance, box))
    return {vm_id: tuple(grants) for vm_id, grants in found.items()}


def _grant(notebook: Notebook, instance: Instance, box: SecretBox) -> NotebookGrant:
    serve = (instance.status in SERVING and instance.client_instance_id == notebook.client_instance_id
             and bool(instance.attachment_id))
    return NotebookGrant(
        instance_id=instance.id, serve=serve, token=box.open(notebook.token_ciphertext) if serve else "",
        attachment_id=(instance.attachment_id or "") if serve else "",
        environment=tuple((str(key), str(value)) for key, value in json.loads(notebook.environment_json)),
    )

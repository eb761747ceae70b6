"""What a VM reports about its notebook servers, and the lifecycle events it justifies.

Level-triggered like the channel reports (``actual_state``): a server READY for the notebook's
current attachment records its URL and, with the worker and the channel ready too, moves the
instance Attaching -> InUse; FAILED while Attaching ends the attachment (Available, the VM's reason
in the log); anything else clears the URL, so DescribeEais never shows the URL of a server that is
not answering. Reports about notebooks the VM does not host are refused; about an earlier
attachment, ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session

from controller.agent_link import attachment_progress as progress
from controller.agent_link.actual_state import ReportOutcome
from controller.context import ControllerContext
from controller.errors import NoPermission
from controller.states import IllegalTransition, Status
from controller.tables import Instance, Notebook, Transition

MAX_URL = 255


class ServerState(StrEnum):
    UNKNOWN = "unknown"
    NONE = "none"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NotebookReport:
    instance_id: str
    state: ServerState
    url: str = ""
    attachment_id: str = ""
    failure_reason: str = ""


def apply_notebook_reports(
    ctx: ControllerContext, client_instance_id: str, reports: Sequence[NotebookReport]
) -> ReportOutcome:
    """Act on a VM's notebook reports; refuses notebooks of other VMs (PERMISSION_DENIED)."""
    if not reports:
        return ReportOutcome()

    def act(session: Session) -> ReportOutcome:
        outcome = ReportOutcome()
        for report in sorted(reports, key=lambda r: r.instance_id):
            outcome.transitions.extend(_act_on_report(session, client_instance_id, report, ctx.clock.now_us(),
                                                      outcome.notes))
        return outcome

    try:
        return ctx.db.write_if_needed(act)
    except IllegalTransition as exc:  # another writer moved the instance first; the next report retries
        return ReportOutcome(notes=[f"notebooks: not applied, an instance changed meanwhile ({exc}); report again"])


def _act_on_report(
    session: Session, client_instance_id: str, report: NotebookReport, now: int, notes: list[str]
) -> list[Transition]:
    notebook = session.get(Notebook, report.instance_id)
    if notebook is None:
        notes.append(f"notebook {report.instance_id[:64]}: unknown to the controller (deleted?); stop it")
        return []
    if notebook.client_instance_id != client_instance_id:
        raise NoPermission(f"Notebook {report.instance_id} is not hosted on this VM; report only your own notebooks.")
    instance = session.get(Instance, notebook.instance_id)
    attachment = progress.current_attachment(session, instance) if instance else None
    current = attachment is not None and attachment.id == report.attachment_id
    if report.state is ServerState.READY and current and _is_url(report.url):
        _record_server(session, notebook, report.url, attachment.id)
        attachment = progress.locked(session, attachment)
        return progress.attach_ready_if_both_ends_ready(session, instance, attachment, now)
    if report.state is ServerState.FAILED and current and instance.status == Status.ATTACHING:
        reason = f"VM {client_instance_id} could not start the notebook server: {report.failure_reason or 'no reason given'}"
        return progress.fail_attach(session, instance, attachment, now, reason)
    if report.state in (ServerState.NONE, ServerState.FAILED, ServerState.STARTING) and current:
        _record_server(session, notebook, "", None)
    return []


def _record_server(session: Session, notebook: Notebook, url: str, attachment_id: str | None) -> None:
    if (notebook.server_url, notebook.server_attachment_id) != (url, attachment_id):
        notebook.server_url, notebook.server_attachment_id = url, attachment_id
        session.add(notebook)


def _is_url(url: str) -> bool:
    return url.startswith(("http://", "https://")) and len(url) <= MAX_URL and url.isprintable() and " " not in url

"""Moves a notebook the way its node and VM agents' reports would, for rule and SDK tests without agents."""

from __future__ import annotations

from controller.agent_link.actual_state import (
    ChannelReport,
    ChannelState,
    SlicePhase,
    SliceReport,
    WorkerState,
    apply_node_report,
    apply_vm_report,
)
from controller.agent_link.notebook_reports import NotebookReport, ServerState, apply_notebook_reports
from controller.states import Status
from controller.tables import Instance

URL = "http://10.0.0.5:40001/"


def row(ctx, instance_id) -> Instance:
    with ctx.db.read() as session:
        return session.get(Instance, instance_id)


def slice_ready(ctx, instance_id, *, worker=WorkerState.NONE, attachment_id="", free=False):
    instance = row(ctx, instance_id)
    report = SliceReport(instance.slice_id, SlicePhase.READY, worker, attachment_id=attachment_id,
                         instance_id=instance_id, memory_free=free)
    return apply_node_report(ctx, "node-1", [report])


def server(ctx, instance_id, state=ServerState.READY, *, vm="i-vm1", url=URL, attachment_id=None):
    attachment_id = row(ctx, instance_id).attachment_id if attachment_id is None else attachment_id
    return apply_notebook_reports(ctx, vm, [NotebookReport(instance_id, state, url if state is ServerState.READY else "",
                                                           attachment_id or "", "boom" if state is ServerState.FAILED else "")])


def run_to_in_use(ctx, instance_id, *, server_first=False):
    if row(ctx, instance_id).status != Status.ATTACHING:
        slice_ready(ctx, instance_id)
    attachment_id = row(ctx, instance_id).attachment_id
    if server_first:
        server(ctx, instance_id)
    slice_ready(ctx, instance_id, worker=WorkerState.READY, attachment_id=attachment_id)
    apply_vm_report(ctx, "i-vm1", ChannelReport(attachment_id, ChannelState.PROVEN))
    if not server_first:
        server(ctx, instance_id)


def let_go(ctx, instance_id):
    attachment_id = row(ctx, instance_id).attachment_id
    server(ctx, instance_id, ServerState.NONE)
    slice_ready(ctx, instance_id, free=True)
    apply_vm_report(ctx, "i-vm1", ChannelReport(attachment_id, ChannelState.CLOSED))

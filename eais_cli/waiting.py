"""``--wait``: follow an instance with DescribeEais until it reaches the target status, showing progress on stderr.

On a terminal one line is rewritten in place (``eais-…  Attaching  1.4 s``); into a pipe or a file,
one line is written per status seen. An instance that leaves the path to its target (an attach
that times out back to Available, a node lost: Unavailable, a release) stops the wait with the
reason from the instance's history (``/tenant/v1/instances/ID/history``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from alibabacloud_eais20190624.client import Client

from eais_cli.output import WaitFailed, WaitTimedOut
from eais_cli.service import calling, describe_one, tenant_get

POLL_S = 0.25


@dataclass(frozen=True)
class Goal:
    target: str
    on_the_way: frozenset[str]  # statuses that may come before the target


CREATED = Goal("Available", frozenset({"Pending", "Starting"}))
ATTACHED = Goal("InUse", frozenset({"Attaching"}))
DETACHED = Goal("Available", frozenset({"Detaching"}))


class Progress:
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        self.live = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last = ""

    def show(self, status: str) -> None:
        elapsed = time.monotonic() - self.started
        if self.live:
            print(f"\r{self.instance_id}  {status:<11} {elapsed:5.1f} s", end="", file=sys.stderr, flush=True)
        elif status != self.last:
            print(f"{self.instance_id}: {status} ({elapsed:.1f} s)", file=sys.stderr, flush=True)
        self.last = status

    def end(self) -> float:
        if self.live:
            print(file=sys.stderr)
        return time.monotonic() - self.started


def wait_for(client: Client, endpoint: str, region_id: str, instance_id: str, goal: Goal, timeout_s: float) -> float:
    """Seconds until ``goal.target``; WaitFailed (with the reason) or WaitTimedOut otherwise."""
    progress = Progress(instance_id)
    deadline = time.monotonic() + timeout_s
    while True:
        found = calling(endpoint, lambda: describe_one(client, region_id, instance_id))
        status = found.status if found is not None else "Released"
        progress.show(status)
        if status == goal.target:
            return progress.end()
        if status not in goal.on_the_way:
            elapsed = progress.end()
            raise WaitFailed(f"{instance_id} is {status} after {elapsed:.1f} s, not {goal.target}: "
                             f"{last_reason(client, endpoint, instance_id)}")
        if time.monotonic() > deadline:
            progress.end()
            raise WaitTimedOut(f"{instance_id} is still {status} after {timeout_s:.0f} s (waiting for {goal.target}); "
                               f"it may still get there: eais instances, or wait longer with --timeout")
        time.sleep(POLL_S)


def last_reason(client: Client, endpoint: str, instance_id: str) -> str:
    """The newest transition's event and reason, as the controller logged them."""
    try:
        history = calling(endpoint, lambda: tenant_get(client, f"/tenant/v1/instances/{instance_id}/history",
                                                       "DescribeInstanceHistory"))
    except Exception as error:  # noqa: BLE001 - a released instance has no readable history
        return f"(no history: {error})"
    transitions = history.get("Transitions", [])
    if not transitions:
        return "(no transition recorded)"
    last = transitions[-1]
    return f"{last['Event']} at {last['Time']}: {last['Reason']}"

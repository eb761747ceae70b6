"""Churn without leaks: back-to-back create / attach / connect / call / detach / delete cycles leave the
node and VM agents with the threads and descriptors they started with, and no worker, namespace,
scratch directory or transitional instance behind; right after DescribeEais says InUse, what
``remote_tf.connect()`` checks succeeds. (``make bench`` runs 500 cycles and prints the slopes; this is the short run.)"""

from __future__ import annotations

import time

import pytest

from benchmarks.churn import Target, leftovers, report, run_cycles
from tests.faults.cluster import FaultCluster

pytestmark = pytest.mark.slow
CYCLES, WARM_UP = 30, 5
SLACK = 3  # threads or descriptors a daemon may hold transiently (a relay closing, a timer ending)


def test_back_to_back_cycles_leak_nothing_and_serve_as_soon_as_in_use(cluster: FaultCluster) -> None:
    target = Target(cluster.eais.credentials, cluster.tf_endpoint,
                    {"controller": cluster.controller.process.pid, "node": cluster.node.pid, "vm": cluster.vm.pid},
                    cluster.node_tmp)
    run_cycles(target, WARM_UP)  # first attaches grow pools and caches once

    result = run_cycles(target, CYCLES, sample_every=5)
    time.sleep(2.0)  # the last release settles
    left = leftovers(target)
    print("\n".join(report(result, left)))

    first, last = result.samples[0][1], result.samples[-1][1]
    for daemon in ("node", "vm"):
        assert last[daemon][0] <= first[daemon][0] + SLACK, f"{daemon} threads {first[daemon]} -> {last[daemon]}"
        assert last[daemon][1] <= first[daemon][1] + SLACK, f"{daemon} descriptors {first[daemon]} -> {last[daemon]}"
    assert result.failed_connects == []
    assert left.workers == left.namespaces == left.scratch_dirs == 1  # the one warm worker, and nothing else
    assert left.transitional == []

"""Who reconciles: the lease row, read at each scrape (every replica reports the same holder)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy.exc import SQLAlchemyError

from controller.context import ControllerContext
from controller.errors import EaisError
from controller.leadership import current_lease
from controller.observability import registry

log = logging.getLogger("eais.metrics")
LEADING = registry.gauge("eais_reconciler_leading", "1 while this replica holds the reconciler lease")
PASSES = registry.counter("eais_reconciler_passes_total", "Reconcile passes this replica ran as the leader")


@registry.scrape_source
def reconciler_lease(ctx: ControllerContext) -> Iterator[Metric]:
    try:
        lease = current_lease(ctx)
    except (EaisError, SQLAlchemyError) as error:
        log.warning("metrics: cannot read the reconciler lease: %s", error)
        return
    if lease is None:
        return
    holder = InfoMetricFamily("eais_reconciler_lease", "The replica holding the reconciler lease")
    holder.add_metric([], {"holder": lease.holder})
    yield holder
    yield GaugeMetricFamily("eais_reconciler_lease_epoch", "Terms of the reconciler lease so far (grows on each "
                            "change of hands)", value=lease.epoch)
    yield GaugeMetricFamily("eais_reconciler_lease_expires_timestamp_seconds",
                            "When the lease runs out unless renewed (database clock, Unix seconds)",
                            value=lease.expires_us / 1e6)

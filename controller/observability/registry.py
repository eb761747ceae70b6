"""Where every part of the controller declares its Prometheus metrics, and what ``/metrics`` serves.

With ``serve --api-processes N`` any of N processes may answer a scrape, so there are two kinds
of source, and each is right whichever process answers:

* **Metrics counted where things happen** (:func:`counter`, :func:`gauge`, :func:`histogram`): an
  API request, an attach that finished. Before the primary starts API workers it calls
  :func:`share_between_processes`: from then on every process of this controller keeps these
  values in files of one directory (prometheus-client's multiprocess mode), and a scrape in any
  process adds them up. Declare them once, at import time, through these functions.
* **Values read at scrape time** (:func:`scrape_source`): a function of the ControllerContext
  returning metric families, run at each scrape by the process that answers. For what the
  database knows (instances by status, balances): the one source every process shares.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from controller.context import ControllerContext

SHARED_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's name; API workers inherit it
_DIR_PREFIX = "eais-metrics-"

ScrapeSource = Callable[["ControllerContext"], Iterable[Metric]]
_process_metrics = CollectorRegistry(auto_describe=True)
_declared: list[MetricWrapperBase] = []
_scrape_sources: list[ScrapeSource] = []


def counter(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
    return _declare(Counter(name, documentation, labelnames, registry=_process_metrics))


def histogram(name: str, documentation: str, labelnames: Sequence[str] = (),
              buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS) -> Histogram:
    return _declare(Histogram(name, documentation, labelnames, registry=_process_metrics, buckets=buckets))


def gauge(name: str, documentation: str, labelnames: Sequence[str] = (), *,
          multiprocess_mode: str = "mostrecent") -> Gauge:
    """``multiprocess_mode`` says how values of several processes combine: the default, the last one set,
    suits a gauge that one process sets (the primary's agent link); "livesum" adds up live processes."""
    return _declare(Gauge(name, documentation, labelnames, registry=_process_metrics,
                          multiprocess_mode=multiprocess_mode))


def scrape_source(source: ScrapeSource) -> ScrapeSource:
    """Register ``source`` (usable as a decorator); its module must be imported by every API process."""
    _scrape_sources.append(source)
    return source


def share_between_processes() -> Path:
    """Keep this process's metrics, and those of the processes it starts, in one new directory.

    Call once in the primary, before it starts API workers (they inherit the directory through
    the environment). The directory is removed when the primary exits.
    """
    _remove_directories_of_dead_controllers()
    directory = Path(tempfile.mkdtemp(prefix=f"{_DIR_PREFIX}{os.getpid()}-"))
    os.environ[SHARED_DIR_ENV] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # what prometheus-client picks at import when the variable is set
    for metric in _declared:
        if not metric._labelnames:  # a metric without labels made its value when declared, in memory: remake it
            metric._metric_init()
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def collect_all(ctx: ControllerContext) -> Iterator[Metric]:
    """Every metric family of a scrape: the counted metrics, then the scrape sources."""
    yield from counted_metrics()
    for source in _scrape_sources:
        yield from source(ctx)


def counted_metrics() -> Iterator[Metric]:
    """The counted metrics: of every process of this controller once shared, else of this process."""
    shared = os.environ.get(SHARED_DIR_ENV)
    if shared and os.path.isdir(shared):
        yield from MultiProcessCollector(None, path=shared).collect()
    else:
        yield from _process_metrics.collect()


def _declare(metric: MetricWrapperBase) -> MetricWrapperBase:
    _declared.append(metric)
    return metric


def _remove_directories_of_dead_controllers() -> None:
    """A primary that was killed could not remove its directory; the next one on this host does."""
    for directory in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*-*"):
        pid = directory.name.removeprefix(_DIR_PREFIX).partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True

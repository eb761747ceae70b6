"""Prometheus metrics of the controller, served at ``/metrics`` on the API port by every API process.

How a module adds its own (see :mod:`controller.observability.registry`):

* something counted where it happens (requests, attach latency, agents online as the agent link
  sees them): declare it once at import time with ``registry.counter`` / ``registry.histogram`` /
  ``registry.gauge`` and update it as usual (``.labels(...).inc()``, ``.observe()``, ``.set()``);
  values of every process are added up (gauges: the one set last, unless another mode is given);
* something the database knows: a function ``(ctx) -> Iterable[Metric]`` decorated with
  ``@registry.scrape_source``, run at each scrape; import its module below, so that every API
  process registers it.
"""

from controller.observability import registry, stored_state  # noqa: F401 - stored_state registers a scrape source
from controller.agent_link import link_metrics  # noqa: F401, E402 - agents by state: a scrape source
from controller.observability import reconciler_lease  # noqa: F401, E402 - who reconciles: a scrape source

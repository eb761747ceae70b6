"""Handler of GetInstanceMetrics: read the parameters, ask the rules, shape the answer."""

from __future__ import annotations

from typing import Any

from controller.api import params as p
from controller.api.action_call import ActionCall
from controller.api.metrics_params import metrics_query
from controller.catalogue import require_region
from controller.clock import to_millis_text
from controller.instance_metrics import instance_metrics, percent_text


def get_instance_metrics(call: ActionCall) -> dict[str, Any]:
    region_id = p.optional(call.params, "RegionId")  # the v3 SDK leaves it out unless asked
    if region_id:
        require_region(call.ctx.settings, region_id)
    query = metrics_query(call.params, call.ctx.clock.now_us())
    series = instance_metrics(call.ctx, call.account_id, region_id or None, query)
    return {
        "InstanceId": query.instance_id,
        "PodMetrics": [{
            "PodId": series.pod_id,
            "Metrics": [
                {"Time": to_millis_text(point.bucket_start_us), "Value": percent_text(point.mean_percent)}
                for point in series.points
            ],
        }],
    }

"""The tenant list's buttons send EAI-family actions, so an EI instance's row offers none of them."""

from __future__ import annotations

from controller.console.tenant_views import FILTER_STATUSES, instance_row


def fields(category: str, status: str) -> dict:
    return {"Category": category, "Status": status, "ElasticAcceleratedInstanceId": "eais-x", "RegionId": "cn-hangzhou",
            "CreationTime": "0", "Tags": {"Tag": []}}


def test_an_ei_row_offers_no_eai_actions_and_an_eai_row_keeps_them() -> None:
    for status in ("Bindable", "Bound", "InUse"):
        ei = instance_row(fields("ei", status))
        assert not (ei.can_attach or ei.can_detach or ei.can_release)
    assert instance_row(fields("eais", "Available")).can_attach
    assert instance_row(fields("eais", "InUse")).can_detach and instance_row(fields("eais", "InUse")).can_release


def test_the_status_filter_offers_the_ei_statuses_describe_shows_and_not_the_internal_ones() -> None:
    assert {"Creating", "Bindable", "Bound"} <= set(FILTER_STATUSES)
    assert not {"StartingWorker", "StoppingWorker"} & set(FILTER_STATUSES)

"""The EI family through `eais up`: real agents, real TensorFlow. StartEaisEi gives the VM's endpoint a
remote device that runs TF; StopEaisEi kills the worker (the node's metrics say so) and the VM is
refused again while the instance stays bound to it; DetachEaisEi and DeleteEaisEi give it back."""

from __future__ import annotations

import pytest
from alibabacloud_eais20190624 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException

from eais_cli.local_cluster import REGION, VSWITCH, LocalCluster
from tests.dataplane.conftest import Eais, run_app
from tests.harness.metrics import scrape

WORKER_DEVICE = "/job:worker/replica:0/task:0/device:CPU:0"
TYPE = "eais.ei-a6.xlarge"


def node_workers(cluster: LocalCluster) -> dict[str, float]:
    samples = scrape(f"http://127.0.0.1:{cluster.options.node_metrics_port}/metrics")
    return {key.split('"')[1]: value for key, value in samples.items() if key.startswith("eais_node_workers{")}


def test_start_gives_the_vm_a_remote_device_and_stop_takes_the_worker_away(cluster: LocalCluster, eais: Eais) -> None:
    here, vm, sdk = cluster.tf_endpoint, cluster.credentials["ClientInstanceId"], eais.client
    instance = sdk.create_eais_ei(m.CreateEaisEiRequest(region_id=REGION, instance_type=TYPE, instance_name="ei-dataplane",
                                                        security_group_id="sg-dataplane", v_switch_id=VSWITCH)).body.ei_instance_id
    try:
        eais.wait_until(instance, "Bindable")
        sdk.attach_eais_ei(m.AttachEaisEiRequest(region_id=REGION, ei_instance_id=instance, client_instance_id=vm))
        assert eais.status(instance) == "Bound"  # synchronous: bound at once, nothing runs yet
        bound = run_app("refused", endpoint=here)
        assert bound["refused"] and "no accelerator attached" in bound["message"] and "StartEaisEi" in bound["message"]
        assert node_workers(cluster).get("ready", 0) == 0

        sdk.start_eais_ei(m.StartEaisEiRequest(region_id=REGION, ei_instance_id=instance))
        eais.wait_until(instance, "InUse")
        keras = run_app("keras", endpoint=here)  # remote_tf.connect() through this VM's endpoint
        assert keras["device"] == WORKER_DEVICE and keras["variable_device"] == WORKER_DEVICE
        assert keras["predict_max_diff"] <= 1e-6 and keras["weights_max_diff"] <= 1e-6
        assert node_workers(cluster)["ready"] == 1

        sdk.stop_eais_ei(m.StopEaisEiRequest(region_id=REGION, ei_instance_id=instance))
        eais.wait_until(instance, "Bound")  # shown once the node confirmed the worker gone and its memory free
        assert node_workers(cluster).get("ready", 0) == 0
        stopped = run_app("refused", endpoint=here)
        assert stopped["refused"] and instance in stopped["message"]
        assert eais.status(instance) == "Bound"  # still bound to this VM: StartEaisEi again needs no AttachEaisEi

        sdk.start_eais_ei(m.StartEaisEiRequest(region_id=REGION, ei_instance_id=instance))
        eais.wait_until(instance, "InUse")
        assert run_app("tf1", endpoint=here)["max_diff"] == 0.0
        with pytest.raises(ClientException) as refused:
            sdk.detach_eais_ei(m.DetachEaisEiRequest(region_id=REGION, ei_instance_id=instance))
        assert refused.value.code == "InvalidEaiStatus"
        sdk.stop_eais_ei(m.StopEaisEiRequest(region_id=REGION, ei_instance_id=instance))
        eais.wait_until(instance, "Bound")
        sdk.detach_eais_ei(m.DetachEaisEiRequest(region_id=REGION, ei_instance_id=instance))
        assert eais.status(instance) == "Bindable"
    finally:
        sdk.delete_eais_ei(m.DeleteEaisEiRequest(region_id=REGION, ei_instance_id=instance, force=True))

"""Notebooks on `eais up`'s real cluster: CreateEaiJupyter with the v3 SDK, a kernel started through the Jupyter
REST API that runs remote_tf on the notebook's accelerator, StopEaiJupyter (URL refused, billing stops) and
StartEaiJupyter with the v2 SDK, another account, DeleteEai."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from fractions import Fraction

import httpx
import pytest
from alibabacloud_eais20190624 import models
from aliyunsdkcore.client import AcsClient
from aliyunsdkeais.request.v20190624.StartEaiJupyterRequest import StartEaiJupyterRequest
from sqlmodel import select

from controller.accounts import create_account
from controller.billing import amount_micro, hourly_items
from controller.ledger import price_table
from controller.tables import ClientInstance, Transition
from eais_cli.local_cluster import REGION, VSWITCH
from eais_cli.sdk import client_from_credentials, describe
from tests.harness.jupyter_kernel import KernelSession, split_jupyter_url

pytestmark = pytest.mark.slow
NOTEBOOK_TYPE = "eais.ei-a6.2xlarge"
START_TIMEOUT_S = 120.0

KERNEL_CODE = """
import json, os
import numpy as np, tensorflow as tf
import remote_tf
x = tf.constant(np.random.default_rng(3).standard_normal((32, 32)).astype("float32"))
@tf.function
def f(a):
    return tf.nn.relu(tf.linalg.matmul(a, a)) + tf.reduce_sum(a)
local = f(x).numpy()
connection = remote_tf.connect()
with tf.device(connection.device):
    y = f(x)
print(json.dumps({"device": connection.device, "result_device": y.device,
                  "max_diff": float(np.max(np.abs(y.numpy() - local))),
                  "greeting": os.environ.get("NOTEBOOK_GREETING"), "home": os.environ["HOME"],
                  "endpoint": os.environ["EAIS_TF_ENDPOINT"], "secret_env": [k for k in os.environ if "SECRET" in k]}))
"""


def create_notebook(client) -> str:
    request = models.CreateEaiJupyterRequest(
        region_id=REGION, eais_type=NOTEBOOK_TYPE, eais_name="nb-dataplane", security_group_id="sg-local",
        v_switch_id=VSWITCH,
        environment_var=[models.CreateEaiJupyterRequestEnvironmentVar(key="NOTEBOOK_GREETING", value="hello")])
    return client.create_eai_jupyter(request).body.elastic_accelerated_instance_id


def wait_for(client, instance: str, status: str, timeout_s: float = START_TIMEOUT_S):
    deadline, row = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        row = describe(client, REGION, instance)
        if row.status == status and (status != "InUse" or row.jupyter_url):
            return row
        time.sleep(0.2)
    raise AssertionError(f"{instance} is {row.status if row else '?'}, not {status}, after {timeout_s} s")


def run_on_accelerator(url: str) -> dict:
    base, token = split_jupyter_url(url)
    kernel = KernelSession(base, token)
    try:
        printed, error = kernel.execute(KERNEL_CODE)
    finally:
        kernel.close()
    assert error is None, error
    return json.loads([line for line in printed.splitlines() if line.startswith("{")][-1])


def test_a_notebook_runs_remote_tf_on_its_accelerator_stops_unbilled_starts_again_and_is_private(cluster, eais):
    client = eais.client
    instance = create_notebook(client)
    try:
        row = wait_for(client, instance, "InUse")
        assert row.category == "jupyter" and row.instance_type == NOTEBOOK_TYPE
        base, token = split_jupyter_url(row.jupyter_url)

        first = run_on_accelerator(row.jupyter_url)
        assert first["device"].startswith("/job:worker/") and "/job:worker/" in first["result_device"]
        assert first["max_diff"] < 1e-4
        assert first["greeting"] == "hello" and first["endpoint"] == endpoint_of(cluster, row.client_instance_id)
        assert first["secret_env"] == []  # the agent's AccessKey never reaches a notebook
        assert httpx.get(base + "api/kernels").status_code == 403  # no token, no access
        assert httpx.get(base + "api/kernels", params={"token": "wrong"}).status_code == 403

        other = create_account(cluster.ctx, "notebook-other", balance=Decimal(500), real_name_verified=True)
        stranger = client_from_credentials({**eais.credentials, "AccessKeyId": other.access_key_id,
                                            "AccessKeySecret": other.access_key_secret})
        listed = stranger.describe_eais(models.DescribeEaisRequest(region_id=REGION)).body.instances.instance
        assert all(item.elastic_accelerated_instance_id != instance for item in listed)
        assert_refused_to_stranger(stranger, instance)

        client.stop_eai_jupyter(models.StopEaiJupyterRequest(region_id=REGION, instance_id=instance))
        stopped = wait_for(client, instance, "Stopped", 60)
        assert stopped.jupyter_url == ""
        with pytest.raises(httpx.TransportError):
            httpx.get(base + "api/status", headers={"Authorization": f"token {token}"}, timeout=5)
        time.sleep(1.0)
        stopped_at = last_transition(cluster, instance, "Stopped").at_us
        now_us = time.time_ns() // 1000
        stopped_items = hourly_items(transitions(cluster, instance), price_table(cluster.ctx.settings), stopped_at, now_us)
        stopped_price = price_table(cluster.ctx.settings)[NOTEBOOK_TYPE]
        assert sum(i.billed_us for i in stopped_items) == now_us - stopped_at  # Stopped holds the slice: billed ...
        assert abs(sum(i.amount_micro for i in stopped_items)
                   - amount_micro(Fraction(now_us - stopped_at, 5), stopped_price)) <= len(stopped_items)  # ... at 1/5

        v2 = AcsClient(eais.credentials["AccessKeyId"], eais.credentials["AccessKeySecret"], REGION)
        v2.add_endpoint(REGION, "eais", eais.credentials["Endpoint"].split("://")[-1])
        start = StartEaiJupyterRequest()
        start.set_protocol_type("http")
        start.set_InstanceId(instance)
        v2.do_action_with_exception(start)
        again = wait_for(client, instance, "InUse")
        assert run_on_accelerator(again.jupyter_url)["max_diff"] < 1e-4
        restarted_at, now_us = last_transition(cluster, instance, "Attaching").at_us, time.time_ns() // 1000
        running = hourly_items(transitions(cluster, instance), price_table(cluster.ctx.settings), restarted_at, now_us)
        assert abs(sum(i.amount_micro for i in running)  # the full price again from the restart
                   - amount_micro(now_us - restarted_at, stopped_price)) <= len(running)
    finally:
        client.delete_eai(models.DeleteEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance,
                                                  force=True))
    with pytest.raises(httpx.TransportError):
        httpx.get(base + "api/status", timeout=5)


def assert_refused_to_stranger(stranger, instance: str) -> None:
    from alibabacloud_tea_openapi.exceptions import ClientException

    for call in (lambda: stranger.stop_eai_jupyter(models.StopEaiJupyterRequest(region_id=REGION, instance_id=instance)),
                 lambda: stranger.start_eai_jupyter(models.StartEaiJupyterRequest(region_id=REGION,
                                                                                  instance_id=instance))):
        with pytest.raises(ClientException) as refused:
            call()
        assert refused.value.code == "InvalidParameter.InstanceId.NotFound"


def endpoint_of(cluster, vm_id: str) -> str:
    """The TensorFlow endpoint of the VM the notebook runs on (the host's, or the second VM's if that one is up)."""
    with cluster.ctx.db.read() as session:
        return session.get(ClientInstance, vm_id).tf_endpoint


def transitions(cluster, instance: str) -> list[Transition]:
    with cluster.ctx.db.read() as session:
        return list(session.exec(select(Transition).where(Transition.instance_id == instance)
                                 .order_by(Transition.id)).all())


def last_transition(cluster, instance: str, to_status: str) -> Transition:
    return [row for row in transitions(cluster, instance) if row.to_status == to_status][-1]


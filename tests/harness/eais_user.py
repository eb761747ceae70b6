"""A user of the EAIS API with the official v3 SDK, as the data-plane and fault suites drive it.

Every wait is on DescribeEais, bounded by ``STATUS_TIMEOUT_S``; ``delete`` gives the slice back
whatever state a test left the instance in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from alibabacloud_eais20190624 import models
from alibabacloud_tea_openapi.exceptions import ClientException

from eais_cli.local_cluster import REGION, VSWITCH
from eais_cli.sdk import client_from_credentials, describe, wait_for_status

STATUS_TIMEOUT_S = 60.0


@dataclass
class Eais:
    """The SDK view of the cluster: what a user of `eais up` has."""

    credentials: dict[str, str]

    @property
    def client(self):  # noqa: ANN201
        return client_from_credentials(self.credentials)

    def create(self, instance_type: str = "eais.ei-a6.xlarge") -> str:
        request = models.CreateEaiRequest(region_id=REGION, instance_type=instance_type, instance_name="dataplane",
                                          v_switch_id=VSWITCH)
        deadline = time.monotonic() + STATUS_TIMEOUT_S
        while True:
            try:
                instance = self.client.create_eai(request).body.elastic_accelerated_instance_id
                break
            except ClientException as error:
                # A deleted instance's slice stays draining until the node confirms its memory is free.
                if error.code != "NoResources" or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        wait_for_status(self.client, REGION, instance, "Available", STATUS_TIMEOUT_S)
        return instance

    def attach(self, instance: str, vm: str) -> float:
        started = time.monotonic()
        self.client.attach_eai(models.AttachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance,
                                                       client_instance_id=vm))
        wait_for_status(self.client, REGION, instance, "InUse", STATUS_TIMEOUT_S)
        return time.monotonic() - started

    def detach(self, instance: str) -> None:
        self.client.detach_eai(models.DetachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance))
        wait_for_status(self.client, REGION, instance, "Available", STATUS_TIMEOUT_S)

    def delete(self, instance: str) -> None:
        """Give the slice back whatever the test left it in (the CPU node has room for a few instances only)."""
        if self.status(instance) == "InUse":  # even Force does not release an instance in use
            self.detach(instance)
        self.client.delete_eai(models.DeleteEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance,
                                                       force=True))

    def status(self, instance: str) -> str:
        return describe(self.client, REGION, instance).status

    def wait_until(self, instance: str, status: str, timeout_s: float = STATUS_TIMEOUT_S) -> float:
        """Seconds until DescribeEais shows ``status``."""
        return wait_for_status(self.client, REGION, instance, status, timeout_s)

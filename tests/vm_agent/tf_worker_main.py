"""A real TensorFlow worker for the VM agent's tests: ``python -m tests.vm_agent.tf_worker_main PORT``.

What the node agent starts per attachment: a ``tf.distribute.Server``, job "worker", task 0, on
loopback. Prints ``READY`` once it serves.
"""

import sys

import tensorflow as tf

port = int(sys.argv[1])
cluster = tf.train.ClusterSpec({"worker": [f"127.0.0.1:{port}"]})
server = tf.distribute.Server(cluster, job_name="worker", task_index=0, protocol="grpc", start=True)
print("READY", flush=True)
server.join()

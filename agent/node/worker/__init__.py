"""The node agent's TensorFlow workers, from a warm pool to a killed process whose memory is back.

- ``pool``       warm workers kept ahead of attaches, refilled after each take
- ``process``    one worker process: events, assignment, connect, kill (pidfd)
- ``launch``     how workers start: interpreter, scrubbed environment, a uid each
- ``records``    pids on disk, so a restarted agent kills the workers it left
- ``probe``      the GetStatus round trip that proves a worker READY
- ``observer``   memory still held? usage figures (NVML, psutil)
- ``served``     a worker bound to one attachment: bring-up, proof, relays, stop + memory check

The worker side is :mod:`remote_tf.worker` (with :mod:`remote_tf.worker_sandbox`).
"""

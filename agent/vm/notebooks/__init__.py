"""Notebook servers on the VM (CreateEaiJupyter): one Jupyter server per notebook the controller lists.

- :mod:`agent.vm.notebooks.launch`: what a server is given (uid, home, scratch, token, environment,
  kernel spec) and the command that starts it;
- :mod:`agent.vm.notebooks.server`: one running server, watched until it answers, stopped on demand;
- :mod:`agent.vm.notebooks.follower`: follows the desired state's notebook list and reports each server.
"""

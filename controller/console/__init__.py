"""The console in the browser (``/console``): tenant pages signed in with an AccessKey, operator pages behind the
admin token; and the signed tenant routes (``/tenant/v1``) the EAIS action set has no room for.

- ``app``            the mounted web application: routers, error pages, static files
- ``sessions``       sealed, expiring session cookies and their CSRF tokens
- ``guards``         signing in, the session of a request, the CSRF and origin check of every change
- ``sign_in_routes`` sign-in and sign-out forms (tenant and operator)
- ``tenant_routes``  instances (live), one instance (actions, tags, charts, history), the bill
- ``action_routes``  EAIS actions run through the API's own handlers; the live status stream
- ``operator_routes`` nodes and slices, client VMs and agents, accounts, the reconciler's leader
- ``tenant_views``, ``tenant_reads``, ``charts``, ``live``, ``formatting``, ``web``: what those pages show
- ``signed_routes``  ``GET /tenant/v1/bill`` and an instance's history, signed like the API
"""

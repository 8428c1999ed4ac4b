"""Pure builders of the requests sagebert sends: values in, request dicts out; nothing talks to AWS.

One module per kind of resource — ``common`` (S3 locations, names, tags, image references),
``training``, ``hosting`` (models, endpoint configs, endpoints, blue/green updates), ``tuning``,
``transform``, ``packages`` (the model registry) and ``scaling`` (Application Auto Scaling). The
field names are the APIs' own, so a request can be compared with the API reference line by line.
Rules the API states but botocore does not check (cross-field rules, limits relative to the fleet)
are checked here, with the fix.
"""

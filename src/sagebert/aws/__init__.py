"""The deploy tooling: what runs outside the image, on a laptop or a CI runner, to drive SageMaker.

Modules, in the order data flows through them:

- ``build``: pure builders of the request dicts, one module per resource (training, hosting,
  tuning, transform, packages, scaling) — no clients, testable without AWS.
- ``validation``: checks a request against botocore's service model for what botocore itself does
  not check before sending (name patterns, maximum lengths, enums, tag patterns).
- ``gate``: the metric gate — final metrics, their tags, better-or-not, the side-by-side tables.
- ``invocation``: the body sent to an endpoint and the predictions read back.
- ``errors``: every AWS failure turned into one line saying what went wrong and how to fix it.
- ``clients``: the boto3 clients and sending a validated request; then the calls by concern:
  ``storage`` (S3), ``jobs`` (training, tuning, transform), ``endpoints`` (deploy, update,
  rollback, delete — undoing what a failed command created), ``autoscaling``, ``registry``,
  ``sources`` (where a model to deploy comes from).
- ``shadow``: a shadow variant added, promoted or stopped (one config and an UpdateEndpoint).
- ``capture`` (pure: data-capture lines as SageMaker writes them) and ``traffic`` (reading them
  from S3 or a folder, baseline.json, CloudWatch's per-variant metrics) for ``sagebert report``.
- ``watch``: waiting with progress — job status transitions and every host's CloudWatch log
  stream, endpoint status (an update not yet visible is not a rollback), tuning trials.

Only ``sagebert.cli`` prints. Nothing here imports torch.
"""

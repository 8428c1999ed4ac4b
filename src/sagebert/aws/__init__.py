"""The deploy tooling: what runs outside the image, on a laptop or a CI runner, to drive SageMaker.

Modules, in the order data flows through them:

- ``requests``: pure functions that build the SageMaker request dicts (names, channels, spot,
  deployment policies) — no clients, testable without AWS.
- ``validation``: checks a request against botocore's service model for what botocore itself does
  not check before sending (name patterns, maximum lengths, enums).
- ``invocation``: the body sent to an endpoint and the predictions read back.
- ``errors``: every AWS failure turned into one line saying what went wrong and how to fix it.
- ``actions``: the boto3 clients and the calls (S3 upload, create/update/delete).
- ``watch``: waiting with progress — training-job status transitions, every host's CloudWatch
  log stream, endpoint status.

Only ``sagebert.cli`` prints. Nothing here imports torch.
"""

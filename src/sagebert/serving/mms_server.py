"""multi-model-server, started the sagemaker-inference way with sagebert's handler service.

Run by sagebert.serving.mms (never directly by users): ``python -m sagebert.serving.mms_server``.
The toolkit writes /etc/sagemaker-mms.properties from the SAGEMAKER_* variables (workers per
model, response timeout, max request size, JVM options: -XX:-UseContainerSupport by default, so
the JVM sees every CPU), starts MMS with the model store at / and blocks until it exits.
"""

import sys

HANDLER_SERVICE = "sagebert.serving.mms_handler_service"


def main() -> int:
    from sagemaker_inference import model_server

    model_server.start_model_server(handler_service=HANDLER_SERVICE)
    return 0


if __name__ == "__main__":
    sys.exit(main())

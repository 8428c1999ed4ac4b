"""The handler service multi-model-server loads for every model (SAGEMAKER_HANDLER).

MMS insists that this module define exactly ONE class, so everything else lives in
sagebert.serving.mms_transformer.
"""

from sagemaker_inference.default_handler_service import DefaultHandlerService

from sagebert.serving.mms_transformer import SagebertTransformer


class HandlerService(DefaultHandlerService):
    """MMS's entry point for one model: initialize(context) loads it, handle(data, context) serves it."""

    def __init__(self):
        super().__init__(transformer=SagebertTransformer())

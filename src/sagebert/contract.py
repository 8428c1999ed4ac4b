"""Values of the container's contract with SageMaker and its clients, in one module without
dependencies, so that the image's code and the tooling outside it (the CLI, aws/build) use the
same ones."""

# SAGEBERT_INFERENCE_PRECISION's values: auto chooses onnx-int8 on CPU, fp32 on GPU.
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8", "onnx-int8")

# syntax=docker/dockerfile:1
# sagebert: ONE image that SageMaker runs to fine-tune (`train`) and to serve (`serve`) a BERT
# text classifier. Build it with container/build-image.sh (it picks the base, makes a wheelhouse
# where the build cannot reach an index, and sets the labels), or directly:
#   docker build -t sagebert:dev .                                    # CPU, from python:3.11-slim
#   docker build -t sagebert:gpu --build-arg VARIANT=gpu \
#     --build-arg BASE_IMAGE=nvidia/cuda:13.0.1-base-ubuntu22.04 .     # CUDA torch, CUDA base
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- builder: compiles the source-only packages; its compiler never reaches the final image ----
FROM ${BASE_IMAGE} AS builder
ARG VARIANT=cpu
# auto: install from wheelhouse/ when it holds wheels (see container/make-wheelhouse.sh); 0: index only.
ARG USE_WHEELHOUSE=auto
COPY container/install-system-packages.sh container/install-python-packages.sh /build/
RUN /build/install-system-packages.sh builder
COPY requirements/ /build/requirements/
COPY wheelhouse/ /build/wheelhouse/
RUN /build/install-python-packages.sh "${VARIANT}" "${USE_WHEELHOUSE}"

# ---- runtime ----
FROM ${BASE_IMAGE}
ARG VARIANT=cpu
COPY container/install-system-packages.sh /tmp/install-system-packages.sh
RUN /tmp/install-system-packages.sh runtime && rm /tmp/install-system-packages.sh
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=TRUE \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    TOKENIZERS_PARALLELISM=false \
    SAGEMAKER_TRAINING_MODULE=sagebert.container.training_module:main \
    SAGEBERT_VARIANT=${VARIANT}
# Our own package last: a source change rebuilds only this small layer.
COPY pyproject.toml README.md /tmp/sagebert/
COPY src/ /tmp/sagebert/src/
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-index \
        --no-build-isolation /tmp/sagebert \
    && python -m compileall -q --invalidation-mode unchecked-hash \
        "$(python -c 'import sagebert, os; print(os.path.dirname(sagebert.__file__))')" \
    && rm -rf /tmp/sagebert /root/.cache
COPY container/program/ /opt/sagebert/program/
COPY container/entrypoint.sh /usr/local/bin/sagebert-entrypoint

# Declared here, not above: a new revision must not invalidate the cached layers before it.
ARG VERSION=0.0.0
ARG GIT_REVISION=unknown
LABEL org.opencontainers.image.title="sagebert" \
      org.opencontainers.image.description="Fine-tune and serve a BERT text classifier on Amazon SageMaker" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      com.amazonaws.sagemaker.capabilities.accept-bind-to-port="true" \
      com.amazonaws.sagemaker.capabilities.multi-models="true" \
      sagebert.variant="${VARIANT}"
EXPOSE 8080
WORKDIR /opt/sagebert
# Exec form: the entrypoint execs `train` (the sagemaker-training toolkit) or the server, so
# SIGTERM from docker stop / SageMaker reaches that process directly.
ENTRYPOINT ["/usr/local/bin/sagebert-entrypoint"]

# syntax=docker/dockerfile:1
# sagebert: ONE image that SageMaker runs to fine-tune (`train`) and to serve (`serve`) a BERT
# text classifier. Build it with container/build-image.sh (it picks the base, makes a wheelhouse
# where the build cannot reach an index, and sets the labels), or directly:
#   docker build -t sagebert:dev .                                    # CPU, from python:3.11-slim
#   docker build -t sagebert:gpu --build-arg VARIANT=gpu \
#     --build-arg BASE_IMAGE=nvidia/cuda:13.0.1-base-ubuntu22.04 .     # CUDA torch, CUDA base
#   (VARIANT=gpu-cu12 with nvidia/cuda:12.8.1-base-ubuntu22.04: CUDA 12 torch, for drivers 525-579)
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- builder: compiles the source-only packages and makes the Java runtime; its compiler and
# JDK never reach the final image ----
FROM ${BASE_IMAGE} AS builder
ARG VARIANT=cpu
# auto: install from wheelhouse/ when it holds wheels (see container/make-wheelhouse.sh); 0: index only.
ARG USE_WHEELHOUSE=auto
ENV PYTHONDONTWRITEBYTECODE=1
COPY container/install-system-packages.sh /build/
RUN /build/install-system-packages.sh builder
# Only the locks this variant installs: a change to another lock (dev.lock, the other variant's)
# leaves this layer and the next cached.
COPY requirements/build.lock requirements/model.lock requirements/image-${VARIANT}.lock /build/requirements/
COPY wheelhouse/ /build/wheelhouse/
COPY container/install-python-packages.sh /build/
RUN /build/install-python-packages.sh "${VARIANT}" "${USE_WHEELHOUSE}"
# Bytecode, compiled once here rather than at every start (the image sets PYTHONDONTWRITEBYTECODE,
# so nothing is cached at run time), for the modules train and serve import: it halves the import
# time of torch and transformers, most of `serve`'s cold start. The standard library's go to
# /build/rootfs, for bases that have none (python:3.11-slim).
COPY container/compile-bytecode.py container/bytecode-modules.txt /build/
RUN /opt/venv/bin/python /build/compile-bytecode.py /build/bytecode-modules.txt site-packages \
    && /opt/venv/bin/python /build/compile-bytecode.py /build/bytecode-modules.txt stdlib /build/rootfs
COPY container/make-java-runtime.sh /build/
RUN /build/make-java-runtime.sh /build/rootfs/opt/java

# ---- app: sagebert itself, installed apart so that a source change rebuilds only its own layer ----
FROM builder AS app
COPY pyproject.toml README.md /tmp/sagebert/
COPY src/ /tmp/sagebert/src/
# pip comes from /opt/build-tools (install-python-packages.sh keeps it out of the venv); --prefix
# puts sagebert's files, and nothing else, under /opt/sagebert-install for the final stage.
RUN PYTHONPATH=/opt/build-tools /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
        --no-deps --no-index --no-build-isolation --no-compile --prefix /opt/sagebert-install /tmp/sagebert \
    && /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash \
        /opt/sagebert-install/lib/python3.11/site-packages/sagebert

# ---- runtime ----
FROM ${BASE_IMAGE}
COPY container/install-system-packages.sh /tmp/install-system-packages.sh
RUN /tmp/install-system-packages.sh runtime && rm /tmp/install-system-packages.sh
ENV PATH=/opt/venv/bin:/opt/java/bin:$PATH \
    JAVA_HOME=/opt/java \
    PYTHONUNBUFFERED=TRUE \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    TOKENIZERS_PARALLELISM=false \
    SAGEMAKER_TRAINING_MODULE=sagebert.container.training_module:main \
    NVIDIA_DISABLE_REQUIRE=1
# NVIDIA_DISABLE_REQUIRE: the nvidia/cuda bases declare NVIDIA_REQUIRE_CUDA, with which the NVIDIA
# container runtime refuses to start the container on an older driver, before any of its code
# runs. sagebert checks the driver itself at start (src/sagebert/container/driver_check.py) and
# says why in /ping and the log, naming the AMI to pick.
# /opt/java (make-java-runtime.sh), and bytecode for the standard-library modules train and
# serve import where the base has none (compile-bytecode.py).
COPY --from=builder /build/rootfs/ /
COPY --from=builder /opt/venv /opt/venv
# Our own package last: a source change rebuilds only this small layer.
COPY --from=app /opt/sagebert-install/ /opt/venv/
COPY container/program/ /opt/sagebert/program/
COPY container/entrypoint.sh /usr/local/bin/sagebert-entrypoint

# Declared here, not above: a new revision must not invalidate the cached layers before it.
ARG VARIANT=cpu
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

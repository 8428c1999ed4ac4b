#!/bin/sh
# The image's ENTRYPOINT. SageMaker runs `docker run IMAGE train` for training jobs and
# `docker run IMAGE serve` for endpoints and batch transform. Each branch execs, so the program
# that does the work is PID 1 and receives SIGTERM itself.
set -e
case "${1:-}" in
  train)
    shift
    # The sagemaker-training toolkit: it reads /opt/ml, sets the SM_* variables and calls
    # $SAGEMAKER_TRAINING_MODULE (sagebert.container.training_module:main).
    exec train "$@" ;;
  serve)
    shift
    exec sagebert-serve "$@" ;;
  "")
    echo "usage: docker run IMAGE train|serve  (or any command, e.g. 'python -m sagebert.training --help')" >&2
    exit 64 ;;
  *)
    exec "$@" ;;
esac

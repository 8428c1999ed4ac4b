"""sagebert: fine-tune and serve a BERT text classifier in one SageMaker image."""

from importlib import metadata

try:
    __version__ = metadata.version("sagebert")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

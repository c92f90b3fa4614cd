"""renewlm: update language models with new data by continual pre-training."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("renewlm")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

"""Corpora (tokenized once into memory-mapped shards), mixtures and the data stream.

The face of the package: `from renewlm.data import Corpus, prepare, list_corpora`."""

from renewlm.data.corpus import Corpus, Split, list_corpora
from renewlm.data.prepare import prepare

__all__ = ["Corpus", "Split", "list_corpora", "prepare"]

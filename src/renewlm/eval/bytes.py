"""Loss per byte: held-out losses that compare across tokenizers.

A loss per token depends on how much text a token holds: a tokenizer with longer tokens has fewer,
harder tokens to predict. Per byte of the text it does not: the held-out windows of a corpus decode
to a known number of UTF-8 bytes, and

    bits per byte = loss · tokens / (bytes · ln 2)

with `loss` the mean loss per token (nats) over `tokens` predicted tokens that decode to `bytes` bytes
(Gao et al. 2020, The Pile, report "bits per UTF-8 encoded byte" so). The predicted tokens of the windows are
the split's tokens 1 .. n·seq_len, read once and decoded document by document (each ends with EOS,
which decodes to no byte), so no character is cut at a window's edge. The count is kept per corpus,
tokenizer and windows for the life of the process: every version of one `renewlm eval` that reads the
same windows decodes them once.
"""

from __future__ import annotations

import math

import numpy as np

from renewlm.data.tokenizer import fingerprint
from renewlm.eval.heldout import heldout_windows

_BYTES: dict[tuple, int] = {}


def heldout_bytes(split, tokenizer, *, seq_len: int, max_tokens: int) -> tuple[int, int]:
    """(predicted tokens, UTF-8 bytes they decode to) of a split's held-out windows; (0, 0) without windows."""
    n = heldout_windows(split, seq_len, max_tokens)
    if n == 0:
        return 0, 0
    key = (str(split.folder), split.num_tokens, fingerprint(tokenizer), seq_len, n)
    if key not in _BYTES:
        targets = np.asarray(split.read(1, n * seq_len), dtype=np.int64)
        ends = np.flatnonzero(targets == tokenizer.eos_token_id) + 1
        documents = [d.tolist() for d in np.split(targets, ends) if len(d)]
        texts = tokenizer.backend_tokenizer.decode_batch(documents, skip_special_tokens=True)
        _BYTES[key] = sum(len(t.encode("utf-8")) for t in texts)
    return n * seq_len, _BYTES[key]


def bits_per_byte(loss: float, tokens: int, n_bytes: int) -> float | None:
    """Mean loss per token (nats) as bits per byte of the text; None where the tokens hold no byte."""
    return loss * tokens / (n_bytes * math.log(2)) if n_bytes else None


def per_byte(loss: float, split, tokenizer, *, seq_len: int, max_tokens: int) -> dict:
    """`bits_per_byte` and `bytes_per_token` of a held-out loss measured on `split`'s windows."""
    tokens, n_bytes = heldout_bytes(split, tokenizer, seq_len=seq_len, max_tokens=max_tokens)
    return {"bits_per_byte": bits_per_byte(loss, tokens, n_bytes), "bytes_per_token": n_bytes / tokens if tokens else None}

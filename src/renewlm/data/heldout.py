"""The held-out split of a corpus beyond the hash's choice: documents moved from training when the split
is short of `--min-heldout-tokens` (or empty), chosen by content, and the warning for a split too small
to measure a loss on."""

from __future__ import annotations

import heapq
import math
from pathlib import Path

import numpy as np

from renewlm.data.corpus import ShardWriter, Split, replace_documents
from renewlm.errors import ConfigError

# A held-out loss over fewer tokens is too noisy to show forgetting: with per-token losses of
# spread ~2 nats, correlated over ~10 tokens, 10,000 tokens give a standard error near 0.06 nats,
# already the size of the effects measured (replay changes forgetting by ~0.1 nats).
SMALL_HELDOUT_TOKENS = 10_000


class Reserve:
    """Training documents with the smallest content hashes, just enough to hold `tokens` tokens:
    the documents --min-heldout-tokens moves to the held-out split, chosen by content (not by
    position), so the choice is the same for any input order or worker count."""

    def __init__(self, tokens: int):
        self.tokens, self.held, self._heap = tokens, 0, []  # max-heap on (hash, length, document)

    def add(self, hashes: np.ndarray, lengths: np.ndarray, first_document: int) -> None:
        if self.tokens <= 0:
            return
        candidates = np.arange(len(hashes))
        if self.held >= self.tokens:  # only a smaller hash than the largest kept can enter
            candidates = candidates[hashes < np.uint64(-self._heap[0][0])]
        for i in candidates.tolist():
            heapq.heappush(self._heap, (-int(hashes[i]), -int(lengths[i]), -(first_document + i)))
            self.held += int(lengths[i])
            while self.held + self._heap[0][1] >= self.tokens:
                self.held += heapq.heappop(self._heap)[1]

    def take(self, need: int, eos: int, train) -> tuple[list[np.ndarray], dict[int, np.ndarray | None], dict]:
        """Held-out documents worth `need` tokens: whole ones in hash order, the last cut so only its
        tail moves. Returns them, the training split's replacements, and what was done."""
        moved, replace, whole, chunk = [], {}, 0, 0
        for h, length, g in sorted((-h, -n, -g) for h, n, g in self._heap):
            if need <= 0:
                break
            tokens = np.asarray(train.document(g))
            if length <= need:
                moved.append(tokens)
                replace[g] = None
                whole += 1
                need -= length
            else:  # the tail keeps the document's EOS; the head left in train gets one of its own
                moved.append(tokens[length - need :])
                replace[g] = np.append(tokens[: length - need], np.array(eos, dtype=tokens.dtype))
                chunk, need = need, 0
        return moved, replace, {"whole_documents": whole, "chunk_tokens": chunk,
                                "tokens": int(sum(len(m) for m in moved))}


def heldout_warning(manifest: dict) -> str | None:
    """One line when the held-out split is too small to measure a loss on, with the fix."""
    val, total = manifest["val"], manifest["train"]["tokens"] + manifest["val"]["tokens"]
    if manifest.get("min_heldout_tokens") or (manifest["val_fraction"] == 0) or val["tokens"] >= SMALL_HELDOUT_TOKENS:
        return None
    # 5% of the corpus within [10,000, 100,000] tokens, and never over the half that the flag refuses.
    suggest = min(100_000, max(SMALL_HELDOUT_TOKENS, total // 20), total // 2)
    return (
        f"the held-out split holds only {val['tokens']:,} tokens in {val['documents']:,} document(s), too few for a "
        f"steady held-out loss; prepare again with --overwrite --min-heldout-tokens {suggest}"
    )


def hold_out(reserve: Reserve, folder: Path, train_info: dict, dtype: np.dtype, val: ShardWriter, *,
              min_heldout_tokens: int, val_fraction: float, eos: int) -> tuple[dict, dict | None]:
    """Move training documents (in `folder`) to the held-out split when it is short of what was asked;
    returns the training split's record (rewritten when documents moved) and what was moved."""
    train = Split(folder, train_info, dtype)
    need = min_heldout_tokens - val.tokens
    if need > 0:
        total = train_info["tokens"] + val.tokens
        if 2 * min_heldout_tokens > total:
            raise ConfigError(
                f"--min-heldout-tokens {min_heldout_tokens:,} is more than half of the corpus's {total:,} tokens; "
                f"lower it to at most {total // 2}"
            )
        moved, replace, added = reserve.take(need, eos, train)
    elif val.documents == 0 and val_fraction > 0 and train_info["documents"] >= 2:
        # The hash holds out none of n documents with chance (1 - val_fraction)^n, 82% for 40 at the
        # default 0.5%. A held-out split was asked for, so the document of smallest hash gives one:
        # whole, or its tail when longer than the asked share (but 10,000 tokens at least), so a
        # corpus of 4 books holds out 10,000 tokens, not a quarter of itself.
        share = max(SMALL_HELDOUT_TOKENS, math.ceil(val_fraction * train_info["tokens"]))
        moved, replace, added = reserve.take(min(reserve.held, share), eos, train)
    else:
        return train_info, None
    if added:
        for tokens in moved:
            val.add(tokens, np.array([len(tokens)], dtype=np.int64))
        train_info = replace_documents(folder, train_info, dtype, replace)
    return train_info, added

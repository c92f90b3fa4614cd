"""Replay sampled from the parent (`renewlm update --replay 0.05 --replay-source parent`).

A model imported without its pre-training data has nothing to replay; its own samples stand in for that data
(generative replay). The parent writes a corpus of documents it sampled: seeded, at `--replay-temperature`
(default 1, its own distribution), each from BOS or from the first tokens of a new-data document
(`--replay-prompts data`; the prompt is not kept), batched with the KV cache (model/sample.py), as many tokens as
the update's replay share reads, plus a held-out part. The corpus is an ordinary one, named after a hash of what
made it and recorded in its corpus.json's `generated`, so the next update from the same parent with the same
settings reuses it. The generation's FLOPs join the update's in its version record.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator

import numpy as np

from renewlm.data.corpus import Corpus
from renewlm.errors import ConfigError
from renewlm.store import Store
from renewlm.updates.request import UpdateRequest
from renewlm.versions import read_version

BATCH = {"cpu": 16, "cuda": 128}  # sequences sampled at once
PROMPT_TOKENS = 8  # --replay-prompts data: the first tokens of a new-data document
WAIT_SECONDS = 1.0  # under torchrun, how often the other processes look for process 0's corpus


def replay_tokens(request: UpdateRequest, shape: dict) -> int:
    """Tokens the update's replay share reads: F of every step's batch, over its whole steps."""
    steps = shape["steps"] or shape["tokens"] // shape["batch_tokens"]
    return math.ceil(request.replay * steps * shape["batch_tokens"])


def _settings(store: Store, request: UpdateRequest, shape: dict, prompt_corpora: list[str]) -> dict:
    tokens = replay_tokens(request, shape)
    seq_len = shape["seq_len"]
    folder = store.path("versions", request.parent)
    manifest = folder / "manifest.json"
    # The parent's weights as they are: a version removed and written again under the same name is another parent.
    digest = hashlib.sha256(manifest.read_bytes() if manifest.is_file() else (folder / "version.json").read_bytes())
    return {
        "version": request.parent, "version_manifest_sha256": digest.hexdigest(), "seed": request.seed,
        "temperature": request.replay_temperature or 1.0, "prompts": request.replay_prompts or "bos",
        "prompt_corpora": prompt_corpora, "tokens": tokens,
        # held out like prepare's default: 0.5%, and at least one sequence so a held-out loss can be measured
        "heldout_tokens": max(seq_len + 1, math.ceil(0.005 * tokens)), "document_tokens": seq_len,
    }


def corpus_name(settings: dict) -> str:
    """`PARENT.replay-HASH`: the hash of every setting, so other settings make another corpus."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return f"{settings['version'][:100]}.replay-{digest}"


def generated_replay(store: Store, request: UpdateRequest, shape: dict, prompt_corpora: list[str],
                     say: Callable[[str], None] = print) -> tuple[str, float]:
    """The sampled replay corpus of this update and the FLOPs spent sampling it now (0 when reused)."""
    settings = _settings(store, request, shape, prompt_corpora)
    name = corpus_name(settings)
    if int(os.environ.get("RANK", "0")) > 0:  # torchrun: process 0 samples (see docs/updates.md), the others wait
        while not store.exists("corpora", name):
            time.sleep(WAIT_SECONDS)
    if store.exists("corpora", name):
        return name, _reused(store, name, settings, request.name)
    folder = store.path("versions", request.parent)
    if not (folder / "tokenizer.json").is_file():
        kind = read_version(store, request.parent).kind
        raise ConfigError(
            f"--replay-source parent samples text with the parent's tokenizer, but {kind} version {request.parent!r} has "
            f"no tokenizer.json; import it again from a folder with its tokenizer, or replay corpora with --replay-from"
        )
    # written under the corpus's lock (Store.staging): a second update sampling it at the same time is refused
    return name, _sample(store, name, settings, request.name, say)


def _reused(store: Store, name: str, settings: dict, update: str) -> float:
    """The FLOPs the update owes for a corpus already made: its sampling's if this update made it (a resumed run),
    else none (the ledger counts each sampling once, in the update that paid for it)."""
    made = Corpus.open(store, name, verify=False).manifest.get("generated") or {}
    if {k: made.get(k) for k in settings} != settings:
        raise ConfigError(
            f"corpus {name!r} in the store was not sampled from version {settings['version']!r} with this update's "
            f"settings, so it is not reused as its replay; remove {store.path('corpora', name)} and run the update again"
        )
    return float(made.get("flops") or 0.0) if made.get("made_for") == update else 0.0


def _sample(store: Store, name: str, settings: dict, update: str, say: Callable[[str], None]) -> float:
    import torch

    from renewlm.data.prepare import write_documents
    from renewlm.model.flops import block_parameters, flops_per_token
    from renewlm.versions import load_version

    model, tokenizer = load_version(store, settings["version"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    total = settings["tokens"] + settings["heldout_tokens"]
    # A forward pass is a third of a training step's 6N + 12·L·d·T: 2N + 4·L·d·T per token (T: the document length).
    per_token = flops_per_token(model.config, settings["document_tokens"], blocks=block_parameters(model)) / 3
    # what was sampled, counted as it is (whole batches: rows past the tokens needed, positions past a row's EOS)
    record = {**settings, "made_for": update, "sampled_tokens": 0, "flops": 0.0}
    parent = read_version(store, settings["version"])
    rate = parent.flops / parent.seconds / 3 if parent.flops and parent.seconds else None
    when = f", about {per_token * total / rate:.3g} s at the parent's training rate (sampling is slower per FLOP)" if rate else ""
    say(f"sampling {total:,} replay tokens from {settings['version']!r} ({per_token * total:.3g} FLOPs{when}) "
        f"into corpus {name!r}")
    started = time.monotonic()
    documents = _documents(store, model, tokenizer, settings, device, BATCH.get(device.type, 16), record, per_token)
    # corpus.json is written after the last document is taken, so it holds the record's final counts
    write_documents(store, name, documents, settings["version"], train_tokens=settings["tokens"],
                    heldout_tokens=settings["heldout_tokens"], record=record)
    seconds = time.monotonic() - started
    say(f"sampled {record['sampled_tokens']:,} tokens in {seconds:.1f} s "
        f"({record['sampled_tokens'] / max(seconds, 1e-9):,.0f} tokens/s)")
    return record["flops"]


def _prompts(store: Store, settings: dict, bos: int, batch: int) -> Iterator[list[list[int]]]:
    """Batches of prompts: BOS alone, or the first PROMPT_TOKENS of each new-data document, in corpus order, cycled."""
    if settings["prompts"] == "bos":
        while True:
            yield [[bos]] * batch
    splits = [Corpus.open(store, c, verify=False).train for c in settings["prompt_corpora"]]
    starts = [s.document(i)[:PROMPT_TOKENS].tolist() for s in splits for i in range(s.num_documents)
              if len(s.document(i)) > PROMPT_TOKENS]
    if not starts:
        raise ConfigError(
            f"--replay-prompts data takes the first {PROMPT_TOKENS} tokens of new-data documents, but no document of "
            f"{', '.join(settings['prompt_corpora'])} is longer than that; use --replay-prompts bos"
        )
    at = 0
    while True:
        yield [starts[(at + k) % len(starts)] for k in range(batch)]
        at += batch


def _documents(store: Store, model, tokenizer, settings: dict, device, batch: int, record: dict,
               per_token: float) -> Iterator[np.ndarray]:
    """Sampled documents, each up to its first EOS (kept) or cut at `document_tokens` with an EOS added."""
    import torch

    from renewlm.model.sample import sample_ids

    eos = tokenizer.eos_token_id
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    limit = settings["document_tokens"]
    started = time.monotonic()
    for k, prompts in enumerate(_prompts(store, settings, bos, batch)):
        ids = torch.tensor(prompts, dtype=torch.long, device=device)
        # each batch its own seed: the corpus does not depend on where a batch boundary falls in time
        out = sample_ids(model, ids, max_new_tokens=max(1, limit - ids.shape[1]), temperature=settings["temperature"],
                         seed=settings["seed"] * 1_000_003 + k, eos=eos, pad=eos)[:, ids.shape[1]:].cpu().numpy()
        record["sampled_tokens"] += out.size
        record["flops"] += per_token * out.size
        record["seconds"] = round(time.monotonic() - started, 3)  # sampling alone, up to the last batch taken
        for row in out:
            ends = np.flatnonzero(row == eos)
            doc = row[: ends[0] + 1] if len(ends) else np.append(row, eos)
            if len(doc) > 1:  # an EOS straight away is no document
                yield doc

"""Everything a run needs, built and checked before any compute is spent.

`prepare_run` is a preflight and a build. The preflight resolves the parent or preset, the tokenizer,
the corpora, the stream, the schedule and the evaluators, and reports every problem it finds at once.
The build places the model on its devices (model/parallel.py: checkpointing → compile → shard → load)
and decides whether the run starts fresh, loads weights (a new version from a parent: fresh optimizer,
step 0, the warmup is the re-warm), or resumes the newest complete checkpoint of an interrupted run.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from torch import nn

from renewlm.data.corpus import Corpus, open_corpora
from renewlm.data.stream import MixtureStream
from renewlm.data.tokenizer import fingerprint, load_tokenizer
from renewlm.data.tokenizer_extend import reads
from renewlm.distributed import Dist
from renewlm.eval.config import build_evaluators, default_evaluations
from renewlm.eval.evaluator import Evaluator
from renewlm.errors import ConfigError, RenewError
from renewlm.model.documents import document_mask_problem
from renewlm.model.flops import block_parameters, flops_per_token
from renewlm.model.load import ModelSource, model_positions, resolve_model_source, verify_version
from renewlm.model.parallel import Placement, build_model, placement
from renewlm.optim.schedule import Schedule
from renewlm.store import Store, write_json
from renewlm.train.checkpoint import Checkpointer
from renewlm.train.optimizer_state import load_optimizer
from renewlm.train.config import RunConfig, validate_run
from renewlm.train.ema import EMA, Average, WindowAverage
from renewlm.train.run_record import RUN_FILE, RUN_YAML, read_identity
from renewlm.train.trackers import check_trackers
from renewlm.train.vocabulary import vocabulary_growth
from renewlm.versions import lineage_corpora, read_version


@dataclass
class Run:
    cfg: RunConfig
    store: Store
    dist: Dist
    folder: Path
    run_id: str
    tokenizer: object
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    stream: MixtureStream
    eval_corpora: dict[str, Corpus]
    evaluators: list[Evaluator]
    checkpointer: Checkpointer
    flops_per_token: float
    parameters: dict
    model_info: dict
    start: str  # how the run began: "fresh" | "weights" | "weights+optimizer" (kept across resumes)
    resumed: bool = False  # this process continues from a checkpoint of the run
    state: dict = field(default_factory=dict)  # step, tokens, seconds, bad_steps, skipped_steps, start, resumed_at
    unmeasured: list[str] = field(default_factory=list)  # lineage corpora no longer in the store
    notes: list[str] = field(default_factory=list)  # sentences to print before the first step (refused checkpoints)
    ema: EMA | None = None  # the moving average of the weights (`ema`), saved in checkpoints, written as NAME-ema
    window: WindowAverage | None = None  # the uniform average of the last steps (`average`), written as its release

    @property
    def micro_steps(self) -> int:
        return self.cfg.batch_samples // (self.dist.world * self.cfg.micro_batch)

    @property
    def averages(self) -> dict[str, Average]:
        """The weight averages the run keeps, by their key in a checkpoint."""
        return {key: a for key, a in (("ema", self.ema), ("average", self.window)) if a is not None}

    @property
    def document_eos(self) -> int | None:
        """The EOS id that ends each document attention stays within (`document_mask`), or None: plain causal."""
        # The mixture's corpora share one tokenizer (the stream checks it), so one EOS id.
        return self.stream.corpora[0].eos_id if self.cfg.document_mask else None


def build_optimizer(model: nn.Module, cfg: RunConfig) -> torch.optim.Optimizer:
    decay, no_decay, embedding = [], [], []
    scaled = set()
    if cfg.embedding_lr_scale != 1:  # a group of their own only when their LR differs: checkpoints keep two groups otherwise
        scaled = {id(m.weight) for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None}
    for p in model.parameters():
        if p.requires_grad:
            # Norm weights and biases are vectors: weight decay would only pull them towards 0.
            (embedding if id(p) in scaled else decay if p.ndim >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.optimizer.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if embedding:  # set_lr multiplies the schedule's LR by lr_scale
        groups.append({"params": embedding, "weight_decay": cfg.optimizer.weight_decay, "lr_scale": cfg.embedding_lr_scale})
    return torch.optim.AdamW(
        groups,
        lr=0.0,  # the loop sets every group's LR from the schedule before each step
        betas=cfg.optimizer.betas,
        eps=cfg.optimizer.eps,
        fused=True,  # one kernel per step, on CPU and CUDA; and `found_inf` skips a non-finite step on the device
    )


@dataclass
class Checked:
    """What the preflight resolved: everything a run needs before any weight is read."""

    source: ModelSource
    tokenizer: object
    schedule: Schedule
    stream: MixtureStream
    eval_corpora: dict[str, Corpus]
    evaluators: list[Evaluator]
    unmeasured: list[str]
    placement: Placement
    grow_from: int | None = None  # the parent's ids, when the tokenizer extends its tokenizer: the embeddings grow


def prepare_run(cfg: RunConfig, store: Store, dist_: Dist, *, fresh: bool = False) -> Run:
    """Preflight (every problem at once, nothing written), the run folder, then the build."""
    checked = preflight(cfg, store, dist_)
    run_id = open_run_folder(cfg, store, dist_, fresh=fresh)
    return build(cfg, store, dist_, checked, run_id)


def preflight(cfg: RunConfig, store: Store, dist_: Dist) -> Checked:
    """Resolve the model source, tokenizer, corpora, schedule, stream and evaluators; ConfigError
    listing every problem found."""
    problems: list[str] = []
    for kind in ("runs", "versions"):  # the name (characters, length, a look-alike of another) before anything else
        store.check_new(kind, cfg.name)
    also = [ema_version_name(cfg.name)] if cfg.ema is not None else []
    if cfg.average is not None:
        store.check_new("versions", cfg.average.release)
        also.append(cfg.average.release)
    for name in [cfg.name, *also]:
        if store.exists("versions", name):
            problems.append(
                f"version {name!r} already exists in {store.root}; choose another name or remove it with `renewlm rm {name}`"
            )
    problems += check_trackers(cfg.trackers)
    if cfg.batch_samples % (dist_.world * cfg.micro_batch):
        problems.append(
            f"the global batch of {cfg.batch_samples} sequences does not split into micro-batches of "
            f"{cfg.micro_batch} on {dist_.world} processes; make batch_tokens/seq_len a multiple of "
            f"micro_batch × processes ({cfg.micro_batch * dist_.world})"
        )
    source = _check_source(cfg, store, dist_, problems)
    tokenizer = None
    tokenizer_ref = cfg.tokenizer or cfg.parent
    try:
        tokenizer = load_tokenizer(store, tokenizer_ref)
    except RenewError as e:
        problems.append(str(e))

    corpora, eval_corpora, missing = _check_corpora(cfg, store, tokenizer, tokenizer_ref, problems)
    grow_from = vocabulary_growth(cfg, store, source, tokenizer, problems)
    schedule, stream = _check_stream(cfg, corpora, problems)
    evaluators = []
    if not problems:  # lm-eval tasks are looked up here: an unknown task stops the run before any work
        try:  # no autocast: a bf16 model computes in bf16 through FSDP2's policy, in evaluation as in training
            evaluators = build_evaluators(
                cfg.evaluations or default_evaluations(cfg.eval_every), corpora=eval_corpora, tokenizer=tokenizer,
                seq_len=cfg.seq_len, eval_tokens=cfg.eval_tokens, micro_batch=cfg.micro_batch, dist_=dist_,
                document_mask=cfg.document_mask,
            )
        except RenewError as e:
            problems.append(str(e))
    if problems:
        raise ConfigError("the run cannot start:\n- " + "\n- ".join(dict.fromkeys(problems)))
    where = placement(dist_.device, dist_.world, cfg.precision, cfg.compile, cfg.activation_checkpointing)
    return Checked(source, tokenizer, schedule, stream, eval_corpora, evaluators, missing, where, grow_from)


def _check_corpora(cfg: RunConfig, store: Store, tokenizer, tokenizer_ref: str, problems: list[str]) -> tuple[dict, dict, list[str]]:
    """The mixture's corpora, those evaluated (the mixture's and every corpus the lineage trained on, for
    forgetting), and the lineage's corpora no longer in the store; each corpus read with the run's tokenizer."""
    corpora = open_corpora(store, cfg.mixture.corpus_names(), problems)
    lineage: list[str] = []
    if cfg.parent is not None and store.exists("versions", cfg.parent):
        lineage = [n for n in lineage_corpora(store, cfg.parent) if n not in corpora]
    missing = [n for n in lineage if not store.exists("corpora", n)]
    eval_corpora = dict(corpora)
    eval_corpora.update(open_corpora(store, [n for n in lineage if n not in missing], problems))
    if tokenizer is not None:
        want = fingerprint(tokenizer)
        for name, corpus in eval_corpora.items():
            # a lineage corpus prepared with the base of an extended tokenizer is evaluated on its own ids, which keep their strings
            if corpus.tokenizer_fingerprint != want and (name in corpora or not reads(tokenizer, corpus.tokenizer_fingerprint)):
                problems.append(
                    f"corpus {name!r} was prepared with another tokenizer than {tokenizer_ref!r} "
                    f"(fingerprint {corpus.tokenizer_fingerprint[:12]} vs {want[:12]}); "
                    f"prepare it again with --tokenizer {tokenizer_ref}"
                )
    return corpora, eval_corpora, missing


def _check_stream(cfg: RunConfig, corpora: dict, problems: list[str]):
    """The schedule, and the mixture stream once every corpus opened and nothing else is wrong."""
    steps = cfg.total_steps
    schedule = stream = None
    try:
        schedule = cfg.schedule.build(steps, cfg.batch_tokens)
    except RenewError as e:
        problems.append(str(e))
    if schedule is not None and len(corpora) == len(cfg.mixture.corpus_names()) and not problems:
        events = {name: step / steps for name, step in schedule.events.items()}
        try:
            stream = MixtureStream(
                cfg.mixture, corpora, seq_len=cfg.seq_len, total_samples=cfg.data_offset + steps * cfg.batch_samples,
                seed=cfg.seed, events=events,
            )
        except RenewError as e:
            problems.append(str(e))
    return schedule, stream


def _check_source(cfg: RunConfig, store: Store, dist_: Dist, problems: list[str]) -> ModelSource | None:
    try:
        source = resolve_model_source(store, cfg.parent if cfg.parent is not None else f"preset:{cfg.preset}")
    except RenewError as e:
        problems.append(str(e))
        return None
    if source.kind == "version":
        # A corrupted or altered parent is refused before the run folder exists. One process hashes it
        # (every process hashing one shared file system would read it N times) and tells the others.
        refused = None
        if dist_.is_main:
            try:
                verify_version(source.path, source.ref)
            except RenewError as e:
                refused = str(e)
        if refused := dist_.first_message(refused):
            problems.append(refused)
    if cfg.load_optimizer and not (source.kind == "version" and read_version(store, source.ref).optimizer_state
                                   and (source.path / "optimizer").is_dir()):
        problems.append(
            f"load_optimizer is set but {cfg.parent!r} is not a version with optimizer state; "
            f"branch from a trunk version (kind: trunk) or set load_optimizer: false"
        )
    if cfg.document_mask and (why := document_mask_problem(source)):
        problems.append(why)
    if source.kind != "preset":
        limit = model_positions(source.path)
        if limit is not None and cfg.seq_len > limit:
            problems.append(
                f"seq_len {cfg.seq_len} is longer than the {limit} positions model {source.ref!r} supports; "
                f"set seq_len (update: --seq-len) to {limit} or less"
            )
    return source


def open_run_folder(cfg: RunConfig, store: Store, dist_: Dist, *, fresh: bool) -> str:
    """The run's id. The main process alone reads and writes the folder and tells every process.

    The same config resumes, another one needs --fresh. The identity (config and run id) is one file
    written through a rename; run.yaml beside it is a copy for `renewlm train`.
    """
    folder = store.path("runs", cfg.name)
    answer: list = [None, None]  # run id, error
    if dist_.is_main:
        try:
            answer[0] = _open_on_main(cfg, folder, fresh, dist_.hardware())
        except RenewError as e:
            answer[1] = e
    if dist_.distributed:
        dist.broadcast_object_list(answer, src=0)
    if answer[1] is not None:
        raise answer[1]
    return answer[0]


def _open_on_main(cfg: RunConfig, folder: Path, fresh: bool, hardware: dict) -> str:
    resolved = cfg.model_dump(mode="json")
    if fresh and folder.exists():
        shutil.rmtree(folder)
    identity = read_identity(folder)
    if identity is not None and (changed := config_changes(identity["config"], cfg)):
        raise ConfigError(
            f"run {cfg.name!r} already exists in {folder} with other settings ({', '.join(changed)}); "
            f"rerun with --fresh to start it over, or choose another name"
        )
    folder.mkdir(parents=True, exist_ok=True)
    if identity is None:
        run_id = f"{cfg.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        identity = {"run_id": run_id, "config": resolved, "device": hardware}  # the device: for `measured_speed`
        write_json(folder / RUN_FILE, identity)
    if not (folder / RUN_YAML).is_file():
        tmp = folder / f".{RUN_YAML}.tmp"
        tmp.write_text(yaml.safe_dump(resolved, sort_keys=False))
        os.replace(tmp, folder / RUN_YAML)
    return identity["run_id"]


def build(cfg: RunConfig, store: Store, dist_: Dist, checked: Checked, run_id: str) -> Run:
    """The model on its devices, the optimizer, and the state to start from: a checkpoint of this run
    (the main process picks the newest that verifies and tells all), the parent's optimizer, or step 0."""
    folder = store.path("runs", cfg.name)
    checkpointer = Checkpointer(folder / "checkpoints", dist_, cfg.keep_checkpoints)
    pending = checkpointer.resume_point_in_background()  # hashed on a thread while the model is built
    torch.manual_seed(cfg.seed)  # a preset's (or from_scratch's) weights, drawn once on the main process
    model, info = build_model(
        checked.source, checked.placement, tokenizer=checked.tokenizer, trust_remote_code=cfg.trust_remote_code,
        max_position_embeddings=max(cfg.seq_len, 2048), random_init=cfg.from_scratch, grow_from=checked.grow_from,
    )
    per_token = flops_per_token(model.config, cfg.seq_len, blocks=block_parameters(model))
    optimizer = build_optimizer(model, cfg)
    ema = EMA(model, cfg.ema) if cfg.ema is not None else None  # the starting weights; a resume loads the saved average
    window = WindowAverage(model, cfg.total_steps - cfg.average.steps) if cfg.average is not None else None
    averages = {key: a for key, a in (("ema", ema), ("average", window)) if a is not None}

    latest, notes = pending.result()
    if latest is not None:
        state = checkpointer.load(latest, model, optimizer, verified=True, averages=averages)
        state["resumed_at"] = [*state.get("resumed_at", []), state["step"]]
        start, resumed = state.get("start", "weights" if cfg.parent else "fresh"), True
    else:
        start, resumed = ("weights" if cfg.parent is not None and not cfg.from_scratch else "fresh"), False
        if cfg.load_optimizer:
            start = _load_parent_optimizer(cfg, store, model, optimizer)
        state = {"step": 0, "tokens": 0, "seconds": 0.0, "bad_steps": 0, "skipped_steps": 0, "start": start, "resumed_at": []}
    return Run(
        cfg=cfg, store=store, dist=dist_, folder=folder, run_id=run_id, tokenizer=checked.tokenizer, model=model,
        optimizer=optimizer, schedule=checked.schedule, stream=checked.stream, eval_corpora=checked.eval_corpora,
        evaluators=checked.evaluators, checkpointer=checkpointer, flops_per_token=per_token,
        parameters=info["parameters"], model_info=info, start=start, resumed=resumed, state=state,
        unmeasured=checked.unmeasured, notes=notes, ema=ema, window=window,
    )


def ema_version_name(name: str) -> str:
    """The version a run that keeps an EMA writes its average as, beside version `name`."""
    return f"{name}-ema"


def _load_parent_optimizer(cfg: RunConfig, store: Store, model: nn.Module, optimizer: torch.optim.Optimizer) -> str:
    opt_folder = store.path("versions", cfg.parent) / "optimizer"  # checked in preflight
    load_optimizer(opt_folder, model, optimizer, verified=True)  # inside the version verified in preflight
    return "weights+optimizer"


RECORDED_ONLY = ("prediction",)  # what a run records, not how it trains: a rerun that differs there resumes


def config_changes(recorded: dict, cfg: RunConfig) -> list[str]:
    """The settings in which a recorded run config differs from `cfg`, read as today's RunConfig reads
    it: a field added since takes its default, so an upgrade of renewlm never strands a run. What the run
    only records (`RECORDED_ONLY`: the prediction made before it) is not a setting; the rerun's is kept."""
    want = cfg.model_dump(mode="json", exclude=set(RECORDED_ONLY))
    known = {k: v for k, v in recorded.items() if k in want}  # a field removed since is not compared
    try:
        before = validate_run(known, "recorded run").model_dump(mode="json", exclude=set(RECORDED_ONLY))
    except ConfigError:
        before = known
    return sorted(k for k in set(before) | set(want) if before.get(k) != want.get(k))


def describe_start(run: Run) -> str:
    """One line saying what the run does with its starting point (resume is not loading weights)."""
    cfg = run.cfg
    if run.resumed:
        return f"resuming run {cfg.name} from step {run.state['step']} (model, optimizer, data position and RNG restored)"
    if run.start == "fresh" and cfg.from_scratch:
        return f"training from scratch in {cfg.parent}'s architecture, from random weights (seed {cfg.seed})"
    if run.start == "fresh":
        return f"pre-training preset {cfg.preset} from random weights (seed {cfg.seed})"
    if run.start == "weights+optimizer":
        return f"continuing from {cfg.parent}: weights and optimizer state loaded, step 0"
    grown = run.model_info.get("vocabulary")
    grown = f"; embeddings grown from {grown['old_ids']:,} to {grown['ids']:,} ids, new rows at the mean of the old" if grown else ""
    return f"starting from {cfg.parent}: weights only (fresh optimizer, step 0, the schedule's warmup re-warms){grown}"

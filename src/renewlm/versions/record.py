"""The version record: `version.json`'s fields, typed, in one pydantic model.

Every writer builds a `VersionRecord` (a run's version, an import, a soup) and every reader gets one.
A field is added here and nowhere else: its docstring is its line in docs/versions.md's table
(`field_table()`, kept in sync by a test), and where its value follows from other fields (the
schedule's peak and final LR) `migrate` fills it in, for records written before it as for new ones.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, field_validator, model_serializer

from renewlm.config import describe
from renewlm.errors import CorruptError

Kind = Literal["import", "pretrain", "release", "trunk", "soup"]
# The three ways an update makes the next version (updates/paradigm.py), the words of `--paradigm`, of a run
# file's `paradigm:` and of this record; defined here, at the lowest layer that names them.
Paradigm = Literal["continue", "switch", "retrain"]
PARADIGMS: tuple[Paradigm, ...] = get_args(Paradigm)


def _whole(value: float) -> int | float:
    return int(value) if value.is_integer() else value


# A number of tokens: any JSON number (`2e12` too, as a hand-written record may hold), kept as an int when whole.
Tokens = Annotated[float, AfterValidator(_whole)]


class Parent(BaseModel):
    """One parent of a version: a run's single parent (weight 1), a soup's inputs, its base (no weight)."""

    model_config = ConfigDict(extra="allow", strict=True, use_attribute_docstrings=True)
    name: str
    """The parent version's name (or, for a run from a folder, that folder)."""
    weight: float | None = None
    """Its share of the weights: 1 for a run, the merge coefficient for a soup; none for a soup's base."""
    role: Literal["base"] | None = None
    """`base` for the base version of a soup merged against one."""

    @model_serializer(mode="wrap")
    def _role_when_given(self, handler):
        out = handler(self)
        if out.get("role") is None:  # only a soup's base has a role; other parents are written as {name, weight}
            out.pop("role", None)
        return out


class PredictedCandidate(BaseModel):
    """One replay share `--replay auto` predicted: its probe and its predicted losses at the update's end."""

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)
    probe: str
    """The probe version that measured it."""
    heldout: dict[str, float]
    """The predicted held-out loss at the update's end, per corpus."""


class PredictionRecord(BaseModel):
    """What an update predicted before it trained (`update --predict`, `--replay auto`; docs/prediction.md)."""

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)
    probe: str
    """The probe version the prediction was fitted to."""
    replay: float
    """The replay share trained."""
    start: dict[str, float]
    """The parent's held-out loss per corpus, as the probe measured it at its step 0."""
    heldout: dict[str, float]
    """The predicted held-out loss at the update's end, per corpus."""
    forget_budget: float | None = None
    """`--replay auto`: the budget the share was chosen within."""
    candidates: dict[str, PredictedCandidate] | None = None
    """`--replay auto`: every share predicted, by label (`replay 0.05`)."""


class VersionRecord(BaseModel):
    """The fields of `version.json`. A record is checked against them when read, so a field of the wrong type
    (edited by hand) is refused in one sentence there, not as a TypeError in whichever command reads it first.
    Fields it does not list are kept as they are."""

    model_config = ConfigDict(extra="allow", strict=True, use_attribute_docstrings=True)
    name: str
    """This version's name."""
    parents: list[Parent] = []
    """The versions it came from, `[{name, weight}]`: one for a run (the version or folder it started from),
    several for a soup; records written before this field hold a single `parent`, read the same way."""
    kind: Kind = "release"
    """import, pretrain, release, trunk or soup."""
    paradigm: Paradigm | None = None
    """How an update made it (continue, switch, retrain)."""
    trunk: str | None = None
    """For a release branched off a trunk, that trunk."""
    created: str | None = None
    """When it was written (UTC, ISO 8601)."""
    renewlm_version: str | None = None
    """The renewlm that wrote it."""
    run_id: str | None = None
    """The run that wrote it."""
    source: str | None = None
    """For an import, the folder it came from."""
    model: dict[str, Any] | None = None
    """Architecture, `total` and `non_embedding` parameter counts."""
    max_positions: int | None = None
    """The longest sequence the model's position embeddings cover (from `max_position_embeddings`, `n_positions` or
    `max_sequence_length`; null where the config has none)."""
    model_source: dict[str, Any] | None = None
    """What the run loaded: kind (preset, version, folder), reference, path."""
    tokenizer_fingerprint: str | None = None
    """sha256 identifying the tokenizer (see [data](data.md))."""
    corpora: list[str] = []
    """The corpora this version's run trained on, replay included: the lineage's data."""
    mixture: dict[str, Any] | None = None
    """The mixture as the run used it."""
    schedule: dict[str, Any] | None = None
    """The schedule as the run used it; for an import, `{"name": "import", "peak_lr": …, "min_lr": …}` with what
    `--peak-lr` / `--final-lr` gave (absent keys were not given)."""
    peak_lr: float | None = None
    """The schedule's top learning rate (the spec's own `peak`; an import's `--peak-lr`), which `renewlm update`
    starts its cosine and wsd recipes from; null where unknown."""
    final_lr: float | None = None
    """The schedule's floor (the spec's own `floor`: its `min_lr`, a constant's `lr`, a reuse's start/100; an
    import's `--final-lr`), which the reuse and constant recipes start from; null where unknown."""
    seq_len: int | None = None
    """Tokens per training sequence."""
    batch_tokens: int | None = None
    """Tokens per optimizer step."""
    document_mask: bool = False
    """Whether its run masked attention per document (`document_mask`); `renewlm eval` and `soup --data` measure
    its held-out loss the same way. A soup's is its first parent's; false for an import and for older records."""
    steps: int = 0
    """Optimizer steps the run took."""
    skipped_steps: int | None = None
    """Steps skipped for a non-finite gradient."""
    tokens: Tokens = 0
    """Tokens the run trained on; for an import, its pre-training's (`--pretrain-tokens`)."""
    pretrain_seq_len: int | None = None
    """For an import, the sequence length its pre-training FLOPs are counted at."""
    corpus_tokens: dict[str, Tokens] | None = None
    """Tokens each corpus gave the run."""
    data_tokens: Tokens | None = None
    """Of `corpus_tokens`, the tokens of corpora its lineage had not trained on (new data)."""
    seconds: float | None = None
    """Time spent in training steps (for the ledger and time estimates)."""
    device: dict[str, Any] | None = None
    """Device name, process count and host."""
    flops: float = 0.0
    """Training FLOPs of this run (`6N + 12·L·d·T` per token), with `generation_flops`; for an import, of its
    pre-training (`--pretrain-tokens` at `pretrain_seq_len`)."""
    generation_flops: float = 0.0
    """Of `flops`, those spent sampling the run's replay corpus from its parent (`--replay-source parent`)."""
    losses: dict[str, float] = {}
    """Final held-out loss on every corpus of the mixture and of the lineage."""
    evaluations: dict[str, dict[str, Any]] = {}
    """The run's other evaluators' last results (lm-eval tasks)."""
    start: str | None = None
    """How the run began: fresh, weights, weights+optimizer."""
    resumed_at_steps: list[int] = []
    """The steps the run was resumed at."""
    optimizer_state: bool = False
    """Whether `optimizer/` is present (a trunk's AdamW state)."""
    method: str | None = None
    """For a soup, the merge method."""
    base: str | None = None
    """For a soup merged against a base version, that version."""
    method_parameters: dict[str, Any] | None = None
    """For a soup, the method's own numbers (mergekit's density, say)."""
    ema: float | None = None
    """For a run's moving average of weights (its `ema`), the decay: its one parent is the run's version, whose run
    it names; it trained no tokens of its own."""
    averaged_steps: list[int] | None = None
    """For an averaged release (`--release average`), the first and last steps of its trunk's run whose weights it
    averages uniformly (1-based, as metrics.jsonl counts them); its one parent and `trunk` are that trunk."""
    evaluation: dict[str, Any] | None = None
    """For a soup measured on held-out data (`--on`), what it was measured with: corpora, `seq_len`, `eval_tokens`,
    `document_mask`."""
    sweep: dict[str, Any] | None = None
    """For `soup --sweep`, the α kept and the held-out losses of every α tried."""
    greedy: list[dict[str, Any]] | None = None
    """For `soup --greedy`, each version tried in turn: its loss alone, the soup's with it, whether it was added."""
    prediction: PredictionRecord | None = None
    """For an update made with a prediction (`update --predict`, `--replay auto`), what was predicted before it
    trained: `heldout` (the predicted loss at its end, per corpus, to set beside `losses`), `start` (the parent's
    loss, as the probe measured it), `probe` (the probe version), `replay` (the share trained); with `--replay auto`
    also `forget_budget` and each share's `candidates`."""

    @field_validator("parents", mode="before")
    @classmethod
    def _no_null_parents(cls, value):
        return [] if value is None else value

    @property
    def parent_names(self) -> list[str]:
        """The names of its parents (a soup's base included)."""
        return [p.name for p in self.parents if p.name]


def schedule_lrs(schedule: dict | None) -> tuple[float | None, float | None]:
    """(peak, final) learning rate of a schedule as version.json records it (see `peak_lr`, `final_lr`): the
    spec's own `peak` and `floor` (optim/schedule.py), the two LRs an import was given, or None for either
    where the record holds no schedule renewlm can read."""
    from renewlm.errors import ConfigError
    from renewlm.optim.schedule import validate_schedule

    if not schedule:
        return None, None
    if schedule.get("name") == "import":  # `import --peak-lr --final-lr`: a pre-training renewlm did not run
        return schedule.get("peak_lr"), schedule.get("min_lr")
    try:
        spec = validate_schedule(schedule, "a recorded schedule")
    except ConfigError:
        return None, None
    return spec.peak, spec.floor


def migrate(raw: dict) -> dict:
    """A record as any renewlm wrote it, in today's fields: a single `parent` becomes `parents`, and the
    schedule's peak and final LR are filled in where the record does not hold them."""
    out = dict(raw)
    if "parents" not in out and "parent" in out:
        parent = out.pop("parent")
        out["parents"] = [{"name": parent, "weight": 1.0}] if parent else []
    if "peak_lr" not in out or "final_lr" not in out:
        peak, final = schedule_lrs(out.get("schedule") if isinstance(out.get("schedule"), dict) else None)
        out.setdefault("peak_lr", peak)
        out.setdefault("final_lr", final)
    return out


def build_record(fields: dict) -> VersionRecord:
    """The record a writer makes of `fields` (what it knows; the rest takes its default or follows from them)."""
    return VersionRecord.model_validate(migrate(fields))


def parse_record(raw: object, where: str, name: str) -> VersionRecord:
    """The record of version `name` read from `where`, migrated and checked; one sentence when it is not one."""
    fix = f"remove the version with `renewlm rm {name} --force`"
    if not isinstance(raw, dict):
        raise CorruptError(f"{where} holds a {type(raw).__name__}, not a version record; correct it by hand, or {fix}")
    try:
        return VersionRecord.model_validate(migrate(raw))
    except ValidationError as e:
        problems = describe(e, where).replace("\n", "; ")
        raise CorruptError(f"{problems}; correct the field by hand, or {fix}") from None


def field_table() -> str:
    """docs/versions.md's table of version.json's fields, from the model's field docstrings."""
    rows = ["| field | meaning |", "|---|---|"]
    for field, info in VersionRecord.model_fields.items():
        rows.append(f"| `{field}` | {' '.join((info.description or '').split())} |")
    return "\n".join(rows)

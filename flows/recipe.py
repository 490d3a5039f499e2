"""The recipe: one YAML file per run, validated by pydantic when it is loaded.

Unknown keys are errors naming the key, its line and column, and the likely key meant; bad values
are errors naming the field (flows/recipe_errors.py). `--set a.b=value`
overrides a field (the value is parsed as YAML: `--set generate.prompts=8`). Relative paths in a
recipe are resolved against the recipe file's folder, so a recipe works from any working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from filters.decontam import N_GRAM
from filters.novelty import ROUGE_L_MAX
from flows.recipe_errors import format_error, yaml_positions
from flows.stages.base import AUTO, PATH_FIELD, REPETITION_PENALTY, Strict
from flows.stages.ingest import CorpusConfig, corpus_section
from flows.stages.registry import JUDGES, ORIGINS
from generators.errors import SelfAlignError, first_line
from generators.io import decode_utf8
from generators.self_instruct import DEMOS_MACHINE, DEMOS_SEED, NEW_PER_PROMPT
from trainers.heldout import TEST_FRACTION
from trainers.uds import DEFAULT_ALPHA, DEFAULT_BUFFER, DEFAULT_K, DEFAULT_SKETCH_DIM

# Defaults are the constants of the modules that use them (imported above, none imports a model
# library). The origins' and the judges' own sections are declared in their modules and listed
# in flows/stages/registry.py; the recipe takes a section (and a `mix` share) from each.


class OpenAIConfig(Strict):
    """An OpenAI-compatible chat server (vLLM's server, SGLang, TGI, Ollama, a hosted API), or a
    fleet of them: requests are spread over `base_urls` (generators/backends/openai.py)."""

    base_urls: list[str] = Field(
        min_length=1, description="server URLs ending in /v1, e.g. http://127.0.0.1:8000/v1"
    )
    api_key_env: str | None = Field(
        None, description="name of the environment variable holding the API key (never the key)"
    )
    concurrency: int = Field(8, ge=1, le=1024, description="requests in flight at most")
    timeout: float = Field(120.0, gt=0, description="seconds per request before it is retried")
    max_retries: int = Field(
        5, ge=0, description="retries of a request on 429, 5xx, timeouts and connection errors"
    )
    backoff: float = Field(
        0.5, gt=0, description="first retry delay in seconds; doubles each retry, with jitter"
    )
    max_backoff: float = Field(30.0, gt=0, description="retry delay cap in seconds")
    cache: bool = Field(True, description="persistent per-request response cache")
    cache_dir: str | None = Field(
        None, description="response cache folder; None: <runs_dir>/.response-cache"
    )


class ModelConfig(Strict):
    backend: Literal["auto", "vllm", "transformers", "openai"] = "auto"
    name: str = Field(
        "default",
        description="'default', a HF model folder, or a cached model id; with backend 'openai', "
        "the model name the server serves",
    )
    openai: OpenAIConfig | None = Field(None, description="the server(s) for backend 'openai'")

    @model_validator(mode="after")
    def _openai_needs_servers(self) -> ModelConfig:
        if self.backend == "openai" and self.openai is None:
            raise ValueError("backend 'openai' needs model.openai.base_urls")
        return self


class RunnerConfig(Strict):
    """Where the CPU-heavy tasks (embedding, dedup) run: in the flow's own thread pool, or on a
    Dask cluster through Prefect's Dask task runner (prefect-dask)."""

    kind: Literal["default", "dask"] = "default"
    address: str | None = Field(
        None, description="a running Dask scheduler (tcp://host:8786); None: a local cluster"
    )
    workers: int = Field(2, ge=1, description="local cluster workers (processes)")
    threads_per_worker: int = Field(1, ge=1)


def check_cron(expression: str) -> None:
    """Raise ValueError unless `expression` is a cron schedule Prefect accepts."""
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=expression)
    except ValidationError:
        raise ValueError(f"not a cron expression: {expression!r}") from None


class ServeConfig(Strict):
    """Deployments (`selfalign serve`): schedules, and the fine-tune deployment a finished
    curation run can trigger."""

    cron: str | None = Field(
        None, description="schedule of the curation deployment, e.g. '0 3 * * *'"
    )
    interval: float | None = Field(
        None, gt=0, description="schedule every N seconds instead of cron"
    )
    trigger_fine_tune: bool = Field(
        False,
        description="after the export, start the fine-tune deployment (run_deployment, not "
        "waiting) instead of training in the curation process",
    )
    fine_tune_deployment: str | None = Field(
        None, description="deployment to trigger; None: 'fine-tune/<recipe name>'"
    )

    @model_validator(mode="after")
    def _one_schedule(self) -> ServeConfig:
        if self.cron and self.interval:
            raise ValueError("set serve.cron or serve.interval, not both")
        if self.cron:
            check_cron(self.cron)
        return self


class GenerateConfig(Strict):
    """Self-Instruct bootstrapping (Wang et al. 2023) grounded in passages (Self-Specialization)."""

    prompts: int = Field(48, ge=1, description="instruction-generation prompts in total")
    batch_prompts: int = Field(
        16, ge=1, description="prompts per batch; the pool grows between batches"
    )
    demos_seed: int = Field(
        DEMOS_SEED, ge=0, description="seed tasks shown per prompt (Self-Instruct: 6)"
    )
    demos_machine: int = Field(
        DEMOS_MACHINE, ge=0, description="generated tasks shown per prompt (Self-Instruct: 2)"
    )
    new_per_prompt: int = Field(NEW_PER_PROMPT, ge=1, description="new tasks asked for per prompt")
    passages_per_prompt: int = Field(
        1, ge=0, le=8, description="corpus passages grounding each prompt"
    )
    temperature: float = Field(0.9, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(320, ge=16)


class NoveltyConfig(Strict):
    threshold: float = Field(ROUGE_L_MAX, gt=0, le=1, description="drop if ROUGE-L F > threshold")


class InstanceConfig(Strict):
    max_tokens: int = Field(160, ge=8)
    temperature: float = Field(0.0, ge=0)


class RespondConfig(Strict):
    top_k: int = Field(2, ge=0, le=16, description="retrieved passages per answer")
    max_tokens: int = Field(224, ge=8)
    temperature: float = Field(0.0, ge=0)
    repetition_penalty: float = Field(REPETITION_PENALTY, gt=0)


class GroundingConfig(Strict):
    """Answers from the corpus: which passages respond reads, and how much of an answer they must
    back (filters/support.py)."""

    source_passage: bool = Field(
        False,
        description="answer from the passage the task was written from, plus retrieved passages "
        "scoring >= min_score (else: the top_k retrieved by the instruction)",
    )
    min_score: float = Field(
        0.5, ge=-1, le=1, description="cosine a retrieved passage needs beside the source passage"
    )
    min_support: float = Field(
        0.0,
        ge=0,
        le=1,
        description="drop answers with a smaller share of content words and numbers found in "
        "their passages (0: score only)",
    )


class MixRules(Strict):
    """Shares of the curated set by origin (one field per origin of flows/stages/registry.py). An
    origin at 0 is not generated; the others are cut (seeded) after the judged stages until their
    counts stand in these proportions."""

    @model_validator(mode="after")
    def _some_origin(self) -> MixRules:
        if not any(self.shares().values()):
            raise ValueError("mix: at least one origin needs a share above 0")
        return self

    def shares(self) -> dict[str, float]:
        return {o.name: getattr(self, o.name) for o in ORIGINS}


MixConfig = create_model(
    "MixConfig",
    __base__=MixRules,
    __doc__=MixRules.__doc__,
    **{o.name: (float, Field(o.share, ge=0, description=o.share_doc)) for o in ORIGINS},
)


class CalibrationConfig(Strict):
    """Judge calibration on a labelled check set (flows/stages/calibrate.py)."""

    check_set: str | None = Field(None, description="held-out QA JSONL (question, answer)")
    size: int = Field(40, ge=2, description="QA pairs used (each gives a correct + a wrong item)")
    min_agreement: float = Field(0.6, ge=0, le=1)
    on_low: Literal["warn", "skip", "refuse"] = Field(
        "warn",
        description="a judge under min_agreement: warn and use it, skip it (its stage does not "
        "filter; S3FT falls back to exact match), or refuse (stop the run)",
    )


class DecontamConfig(Strict):
    """N-gram decontamination of the export against the held-out sets (filters/decontam.py)."""

    enabled: bool = Field(
        True,
        description="drop records sharing an n-gram with a held-out question or answer "
        "(train.eval.domain, train.eval.general, calibration.check_set)",
    )
    n: int = Field(
        N_GRAM, ge=4, description="n-gram size in words (GPT-3, lm-evaluation-harness: 13)"
    )


class SelectConfig(Strict):
    """Offline utility-diversity selection to a budget (filters/selection.py), after the judges."""

    enabled: bool = False
    budget: int = Field(1000, ge=1, description="records kept at most")
    fraction: float | None = Field(
        None, gt=0, le=1, description="keep at most this share of the records it is given "
        "(rounded up; with `budget`, the smaller)",
    )  # fmt: skip
    utility: Literal["ifd", "rating"] = Field(
        "ifd",
        description="ifd: instruction-following difficulty from the model's answer losses; "
        "rating: the rating judge's score (needs rating.enabled)",
    )
    tau: float = Field(
        0.9, gt=0, le=1, description="drop a record whose cosine to a selected one is > tau"
    )


class UDSConfig(Strict):
    """UDS online batch selection during SFT (trainers/uds.py)."""

    enabled: bool = False
    alpha: float = Field(DEFAULT_ALPHA, ge=0, description="weight of diversity against utility")
    k: int = Field(DEFAULT_K, ge=1, description="samples per micro-batch that get a backward pass")
    buffer: int = Field(
        DEFAULT_BUFFER, ge=1, description="FIFO memory of selected samples' sketches"
    )
    sketch_dim: int = Field(DEFAULT_SKETCH_DIM, ge=4, description="dimension of the logits sketch")


class EvalConfig(Strict):
    """Held-out sets measured before and after training (trainers/evaluate.py)."""

    domain: str | None = Field(None, description="held-out domain QA JSONL (question, answer)")
    general: str | None = Field(
        None, description="general held-out set: QA JSONL or Self-Instruct tasks with instances"
    )
    split_seed: int = Field(0, description="seed of the domain set's dev/test split (by id)")
    test_fraction: float = Field(
        TEST_FRACTION,
        gt=0,
        lt=1,
        description="share of domain questions in the test split (reported only)",
    )
    domain_size: int = Field(
        120, ge=1, description="domain QAs per split (dev and test) for the answer loss"
    )
    general_size: int = Field(100, ge=1, description="general examples for the answer loss")
    knowledge: str | None = Field(
        None,
        description="hand-written knowledge set (trainers/knowledge_set.py): multiple-choice "
        "items on corpus facts (covered) and on same-domain facts in no passage (uncovered), "
        "split dev/test by id like the domain QA",
    )
    generate_size: int = Field(40, ge=0, description="domain QAs answered for the generation score")
    max_new_tokens: int = Field(64, ge=1)


class PromoteConfig(Strict):
    """When a trained model replaces the current one (and generates the next round)."""

    min_domain_gain: float = Field(
        0.0, ge=0, description="relative drop of the domain answer loss required (0.05 = 5%)"
    )
    max_general_increase: float = Field(
        0.02, ge=0, description="relative rise of the general answer loss allowed"
    )


# the run's export files train.extra_sft adds, and the ablation's recipe+<name> variants
ExtraSFT = Literal["self_feedback", "critique_sft"]


class TrainConfig(Strict):
    """Fine-tuning (trainers/): `lora`, `sft` and `dpo` are peft LoraConfig / TRL SFTConfig /
    DPOConfig fields that override the trainers' defaults; unknown fields are errors."""

    enabled: bool = Field(False, description="fine-tune after the export (and in every round)")
    model: str | None = Field(None, description="model to train; None: the round's model")
    method: Literal["lora", "full"] = Field(
        "lora", description="lora: an adapter (train.lora); full: every weight (small models)"
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="auto: bf16 on CUDA, and on a CPU with bf16 units where the loss check "
        "passed (trainers/precision.py), else fp32",
    )
    exposures: int = Field(
        1, ge=1, le=100, description="times each facts row (meta.origin facts) is seen per epoch"
    )
    replay: float = Field(
        0.0, ge=0, le=10, description="general replay rows per domain row (train.replay_set)"
    )
    order: Literal["shuffled", "qa_first"] = Field(
        "shuffled",
        description="shuffled: rows in a seeded random order; qa_first: every question-answer "
        "row, then the document-like facts rows (statement, notes, relation, passage), in that "
        "order (pre-instruction-tuning: QA before documents)",
    )
    replay_set: str | None = Field(
        None, description="Self-Instruct-format file of general tasks the replay rows come from"
    )
    lora: dict[str, Any] = Field(default_factory=dict, description="peft LoraConfig fields")
    sft: dict[str, Any] = Field(default_factory=dict, description="TRL SFTConfig fields")
    dpo: dict[str, Any] | None = Field(
        None, description="TRL DPOConfig fields; set (even {}) to run DPO on export/dpo.jsonl"
    )
    extra_sft: list[ExtraSFT] = Field(
        default_factory=list,
        description="also train on these files of the run's export: SELF's self-feedback rows "
        "(critique an answer), MultiCritique's critique rows (critique as its critics agreed)",
    )
    uds: UDSConfig = UDSConfig()
    eval: EvalConfig = EvalConfig()
    promote: PromoteConfig = PromoteConfig()

    @model_validator(mode="after")
    def _replay_has_a_set(self) -> TrainConfig:
        if self.replay > 0 and not self.replay_set:
            raise ValueError("train.replay > 0 needs train.replay_set (general tasks to replay)")
        return self


ABLATE_VARIANTS = ("corpus-only", "random", "recipe")  # base is always measured: Δ is vs base
# Judged and selection stages a `recipe-minus-<stage>` variant can leave out
# (flows/ablation/ablate.py); the judges' come from flows/stages/registry.py.
JUDGE_STAGE_NAMES = tuple(s for j in JUDGES for s in j.stages)
MINUS_STAGES = ("grounding", *JUDGE_STAGE_NAMES, "mix", "select")
# `origin-<name>`: one origin's records as they reached the mix (flows/stages/mix.py)
ORIGIN_VARIANTS = tuple(o.name for o in ORIGINS)
# `recipe+<name>`: the curated export plus the run's export/<name>.jsonl rows (train.extra_sft)
EXTRA_SFT = get_args(ExtraSFT)
# a random subset of what offline selection was given, as many as it kept
SELECT_RANDOM = "select-random"


class AblateConfig(Strict):
    """`selfalign ablate`: one LoRA per variant, same base model and training-token budget,
    each measured on the dev and test splits (flows/ablation/ablate.py)."""

    variants: list[str] = Field(
        default_factory=lambda: list(ABLATE_VARIANTS),
        description="corpus-only, random, recipe, recipe-minus-<stage>, 'recipe-minus-all' "
        "for every judged/selection stage the recipe has on, recipe-minus-judges for the "
        "export without every judge at once, origin-<origin> for one origin's "
        "records, recipe-without-<origin> for the export without that origin's rows, "
        "random-without-<origin> for the random control drawn without that origin's records, or "
        "recipe+<self_feedback|critique_sft> for the export plus those rows, select-random for "
        "a random subset of what offline selection was given, as many as it kept; base is "
        "always measured",
    )
    token_budget: int | None = Field(
        None, ge=1, description="training tokens per variant; None: the curated set's x epochs"
    )
    epochs: float = Field(2.0, gt=0, description="passes over the curated set the budget equals")
    mc: bool = Field(True, description="multiple-choice accuracy with lm-evaluation-harness")
    seed: int = Field(0, description="row order, the random subset, and the bootstrap")

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, variants: list[str]) -> list[str]:
        for name in variants:
            stage = name.removeprefix("recipe-minus-")
            known = (
                name in ABLATE_VARIANTS
                or (name != stage and stage in (*MINUS_STAGES, "all", "judges"))
                or name.removeprefix("origin-") in ORIGIN_VARIANTS
                or name.removeprefix("recipe-without-") in ORIGIN_VARIANTS
                or name.removeprefix("random-without-") in ORIGIN_VARIANTS
                or name.removeprefix("recipe+") in EXTRA_SFT
                or name == SELECT_RANDOM
            )
            if not known:
                origins = "|".join(ORIGIN_VARIANTS)
                raise ValueError(
                    f"unknown variant {name!r}: choose from {', '.join(ABLATE_VARIANTS)}, "
                    f"recipe-minus-all, recipe-minus-judges, "
                    f"recipe-minus-<{'|'.join(MINUS_STAGES)}>, "
                    f"origin-<{origins}>, recipe-without-<{origins}>, "
                    f"random-without-<{origins}>, "
                    f"recipe+<{'|'.join(EXTRA_SFT)}> or {SELECT_RANDOM}"
                )
        if len(set(variants)) != len(variants):
            raise ValueError("a variant is listed twice")
        return variants


class RecipeHead(Strict):
    """The recipe's sections before the origins'."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="run folder name")
    seed: int = Field(0, description="seeds sampling of demos, passages and the LLM")
    seeds: str = Field(description="seed tasks: Self-Instruct JSONL, Alpaca JSON or own JSONL")
    seeds_max_chars: int = Field(
        20_000, ge=1, description="characters per seed field at most (longer: an error at load)"
    )
    corpus: CorpusConfig
    model: ModelConfig = ModelConfig()
    embedder: str = Field("default", description="'default' or a sentence-transformers folder")
    batch_records: int = Field(64, ge=1, description="records per task in the per-record stages")
    generate: GenerateConfig = GenerateConfig()
    novelty: NoveltyConfig = NoveltyConfig()
    instances: InstanceConfig = InstanceConfig()
    respond: RespondConfig = RespondConfig()
    grounding: GroundingConfig = GroundingConfig()


class RecipeTail(Strict):
    """The recipe's sections after the judges'."""

    calibration: CalibrationConfig = CalibrationConfig()
    select: SelectConfig = SelectConfig()
    decontaminate: DecontamConfig = DecontamConfig()
    train: TrainConfig = TrainConfig()
    ablate: AblateConfig = AblateConfig()
    rounds: int = Field(
        1, ge=1, le=20, description="generate -> train rounds; round t+1 uses round t's model"
    )
    runner: RunnerConfig = RunnerConfig()
    serve: ServeConfig = ServeConfig()
    runs_dir: str = Field("runs", description="where run folders go (relative to the working dir)")


class RecipeRules(Strict):
    """What must hold across a recipe's sections."""

    @field_validator("corpus", mode="before", check_fields=False)
    @classmethod
    def _corpus_path(cls, value: Any) -> Any:
        return corpus_section(value)

    @model_validator(mode="after")
    def _consistent(self) -> RecipeRules:
        if self.train.enabled and not self.train.eval.domain:
            raise ValueError("train.enabled needs train.eval.domain (a held-out domain QA set)")
        if self.rounds > 1 and not self.train.enabled:
            raise ValueError("rounds > 1 needs train.enabled: true (each round trains a model)")
        for judge in JUDGES:
            cfg = getattr(self, judge.section)
            choice = judge.scorer_of(cfg) if judge.scorer_of else None
            if judge.switched_on(cfg) and choice == AUTO and not self.calibration.check_set:
                raise ValueError(
                    f"{judge.section}: 'auto' needs calibration.check_set (calibration picks "
                    "the scorer that agrees best with it)"
                )
        if self.select.enabled and self.select.utility == "rating" and not self.rating.enabled:
            raise ValueError("select.utility 'rating' needs rating.enabled: true")
        if self.serve.trigger_fine_tune:
            if self.train.enabled:
                raise ValueError(
                    "serve.trigger_fine_tune and train.enabled both train: choose one "
                    "(the deployment, or in the curation process)"
                )
            if not self.train.eval.domain:
                raise ValueError("serve.trigger_fine_tune needs train.eval.domain")
        return self


def _fields(model: type[Strict]) -> dict[str, Any]:
    return {name: (info.annotation, info) for name, info in model.model_fields.items()}


def _stage_sections() -> dict[str, Any]:
    """Each origin's own section, the mix (a share per origin), and each judge's section."""
    origins = {o.section: (o.config, o.config()) for o in ORIGINS if o.section}
    judges = {j.section: (j.config, j.config()) for j in JUDGES}
    return {**origins, "mix": (MixConfig, MixConfig()), **judges}


# One YAML file per run: the sections above in this order, the origins' and judges' own sections
# taken from flows/stages/registry.py.
Recipe = create_model(
    "Recipe",
    __base__=RecipeRules,
    __doc__="A run's recipe (flows/recipes/*.yaml).",
    **_fields(RecipeHead),
    **_stage_sections(),
    **_fields(RecipeTail),
)
# The recipe fields that name a file, beside the origins' and judges' PATH_FIELD ones: resolved
# against the recipe file's folder by load_recipe.
PATHS = (
    ("seeds",),
    ("corpus", "path"),
    ("calibration", "check_set"),
    ("train", "eval", "domain"),
    ("train", "eval", "general"),
    ("train", "eval", "knowledge"),
    ("train", "replay_set"),
    ("model", "openai", "cache_dir"),
)


def path_fields() -> list[tuple[str, ...]]:
    """Every file-naming recipe field as a key path: PATHS and the stage sections' PATH_FIELDs."""
    stages = [(o.section, o.config) for o in ORIGINS if o.section]
    stages += [(j.section, j.config) for j in JUDGES]
    marked = [
        (section, name)
        for section, config in stages
        for name, info in config.model_fields.items()
        if (info.json_schema_extra or {}) == PATH_FIELD
    ]
    return [*PATHS, *marked]


def recipe_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML (written to the run folder and the data card)."""
    import yaml

    return yaml.safe_dump(recipe.model_dump(), sort_keys=False)


def _apply_set(data: dict[str, Any], assignment: str) -> None:
    import yaml

    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise SelfAlignError(f"--set {assignment!r}: expected key=value")
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SelfAlignError(f"--set {assignment!r}: '{part}' is not a section")
    node[leaf] = yaml.safe_load(raw) if raw.strip() else ""


def _section(data: dict[str, Any], *keys: str) -> Any:
    """data[k1][k2]... or None where a level is missing or not a mapping."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override and validate a recipe; relative data paths become absolute."""
    import yaml

    path = Path(path)
    if path.is_dir():
        raise SelfAlignError(f"{path}: is a directory, expected a recipe YAML file")
    if not path.is_file():
        raise SelfAlignError(f"{path}: no such recipe file")
    text = decode_utf8(path.read_bytes(), path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:  # the mark, when there is one, says where: name that line
        mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise SelfAlignError(f"{where}: not valid YAML ({problem or first_line(e)})") from None
    if not isinstance(data, dict):
        raise SelfAlignError(f"{path}: a recipe must be a mapping of keys to values")
    for assignment in overrides:
        _apply_set(data, assignment)
    if "corpus" in data:  # before its path is resolved below
        data["corpus"] = corpus_section(data["corpus"])
    base = path.resolve().parent
    for *parents, key in path_fields():
        section = _section(data, *parents)
        if isinstance(section, dict) and isinstance(section.get(key), str):
            section[key] = str((base / Path(section[key]).expanduser()).resolve())
    return validated(data, str(path), text)


def validated(data: dict[str, Any], source: str, text: str | None = None) -> Recipe:
    """`data` as a Recipe; a validation error is one line naming `source` (with the key's line
    and column when `text`, the recipe's YAML, has it) and the key."""
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        positions = yaml_positions(text) if text is not None else None
        raise SelfAlignError(format_error(source, e, Recipe, positions)) from None


def with_overrides(recipe: dict[str, Any], overrides: list[str]) -> Recipe:
    """A recipe dict (a flow parameter) with `--set`-style overrides applied, validated."""
    import copy

    data = copy.deepcopy(recipe)
    for assignment in overrides:
        _apply_set(data, assignment)
    return validated(data, "overrides" if overrides else "recipe")

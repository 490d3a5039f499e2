"""One run of a recipe: its folder, cached model calls, stage bookkeeping, manifest and export."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from flows import rundir
from flows.counts import engine_time, stage_counts, versions
from flows.export import data_card, write_export
from flows.ops.artifacts import flow_run_id, publish_run
from flows.ops.scale import ClusterEncoder, cluster_minhashes
from flows.recipe import Recipe, recipe_yaml
from flows.rundir import FAILED_FILE
from flows.stages.base import Datasets, Outcome, Tools, derive_seed
from flows.stages.ingest import StreamedCorpus
from flows.tasks import (
    LLM_CALLS,
    OPENAI_STATS,
    PROMPT_MODULES,
    build_index,
    code_version,
    content_key,
    llm_batch,
    retrieve_batch,
)
from generators.corpus import Corpus, Passage
from generators.io import iter_jsonl_objects, write_jsonl_atomic, write_text_atomic
from generators.llm import Conversation, Sampling, resolve_backend_name
from generators.models import resolve_model
from generators.records import Record
from generators.retrieval.embedder import embedder_id
from generators.retrieval.index import MANIFEST_FILE, PassageIndex, corpus_key

RESPONSE_CACHE = ".response-cache"  # default response cache folder, under runs_dir


def model_id_for(backend: str, name: str) -> str:
    """Lineage id of a model: 'openai:<served name>' for a server, else the resolved local id."""
    return f"openai:{name}" if backend == "openai" else resolve_model(name).model_id


def llm_options(recipe: Recipe) -> str:
    """`model.openai` as JSON for the LLM task, its cache folder filled in ('' if not openai)."""
    cfg = recipe.model.openai
    if recipe.model.backend != "openai" or cfg is None:
        return ""
    cache_dir = Path(cfg.cache_dir or Path(recipe.runs_dir) / RESPONSE_CACHE).resolve()
    return json.dumps({**cfg.model_dump(), "cache_dir": str(cache_dir)}, sort_keys=True)


def read_failures(run_dir: Path) -> list[dict[str, Any]]:
    """The failed requests an earlier attempt of this run left behind."""
    path = run_dir / FAILED_FILE
    return [row for _, row in iter_jsonl_objects(path)] if path.is_file() else []


def passage_record(passage: Passage) -> Record:
    return Record(
        instruction="",
        output=passage.text,
        id=passage.id,
        meta={"doc_id": passage.doc_id, "origin": "corpus"},
    )


@dataclass
class Run:
    recipe: Recipe
    dir: Path
    backend: str
    model_id: str
    embedder_id: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    index_dir: Path | None = None
    index_key: str = ""  # content key of the indexed corpus: retrieval results depend on it
    rejected: list[Record] = field(default_factory=list)  # every stage's drops, for the export
    seconds: Counter = field(default_factory=Counter)  # wall time per stage (see `timed`)
    # manifest sections the stages returned (calibration, decontamination, support), for `finish`
    sections: dict[str, Any] = field(default_factory=dict)
    round: int = 1  # generate -> train round (flows/pipeline.py); round t uses round t-1's model
    llm_options: str = ""  # backend settings for the LLM task (see `llm_options`)
    failed_requests: list[dict[str, Any]] = field(default_factory=list)  # this attempt's
    earlier_failures: list[dict[str, Any]] = field(default_factory=list)  # not yet asked again

    @classmethod
    def start(cls, recipe: Recipe, round: int = 1) -> Run:
        """Create (or reopen, to resume) the run folder; resolve the model without loading it."""
        run_dir = Path(recipe.runs_dir).resolve() / recipe.name
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / "recipe.yaml", recipe_yaml(recipe))
        backend = resolve_backend_name(recipe.model.backend)
        return cls(
            recipe,
            run_dir,
            backend,
            model_id_for(backend, recipe.model.name),
            embedder_id(recipe.embedder),
            round=round,
            llm_options=llm_options(recipe),
            earlier_failures=read_failures(run_dir),
        )

    @property
    def cache(self) -> Path:
        return self.dir / "cache"

    @property
    def lineage(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "backend": self.backend, "round": self.round}

    def llm(
        self,
        stage: str,
        batch: int,
        conversations: list[Conversation],
        sampling: Sampling,
        model: str | None = None,
        code: tuple[str, ...] = PROMPT_MODULES,
    ) -> list[list[str]]:
        """Cached LLM batch: the key covers stage, sampling, prompts, model and code version.

        `model` (a name like the recipe's) picks another model, e.g. for a second critic;
        `code` names the modules whose source shapes this stage's prompts and parsing. The
        batch's failed requests come back with its replies (from the cache too) and are noted.
        """
        if not conversations:
            return []
        name = model or self.recipe.model.name
        model_id = self.model_id if model is None else model_id_for(self.backend, model)
        params = asdict(sampling)
        key = content_key(stage, params, conversations, self.backend, model_id, code_version(code))
        options: dict[str, Any] = {
            "result_storage": self.cache,
            "task_run_name": f"{stage}-{batch}",
        }
        if any(f["key"] == key for f in self.earlier_failures):
            # ask the failed conversations again; the response cache answers the others
            options["refresh_cache"] = True
        result = llm_batch.with_options(**options)(
            key=key,
            conversations=conversations,
            sampling=params,
            backend=self.backend,
            model=name,
            options=self.llm_options,
        )
        if isinstance(result, list):  # cached before the task returned its failures with it
            result = {"replies": result, "failures": []}
        self.note_failures(stage, batch, key, result["failures"])
        return result["replies"]

    def note_failures(
        self, stage: str, batch: int, key: str, failures: list[dict[str, Any]]
    ) -> None:
        """Add the batch's failed requests to the run and rewrite failed_requests.jsonl."""
        new = [{"stage": stage, "batch": batch, **f, "key": key} for f in failures]
        earlier = [f for f in self.earlier_failures if f["key"] != key]
        if new or len(earlier) != len(self.earlier_failures):
            self.failed_requests += new
            self.earlier_failures = earlier
            write_jsonl_atomic(self.dir / FAILED_FILE, earlier + self.failed_requests)

    def llm_all(
        self, stage: str, conversations: list[Conversation], sampling: Sampling, **options: Any
    ) -> list[list[str]]:
        """`llm` over any number of conversations, in cached batches of `batch_records`;
        `options` (model, code) as `llm` takes them.

        A seeded sampling gets a seed per batch derived from (seed, stage, batch).
        """
        size, replies = self.recipe.batch_records, []
        for b, start in enumerate(range(0, len(conversations), size)):
            batch_sampling = sampling
            if sampling.seed is not None:
                batch_sampling = replace(sampling, seed=derive_seed(sampling.seed, stage, b))
            batch = conversations[start : start + size]
            replies += self.llm(stage, b, batch, batch_sampling, **options)
        return replies

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the wall time of the block to `stage`'s seconds in the funnel."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def encoder(self):
        """What embeds passages and records: the local embedder, or chunks on a Dask cluster."""
        # not imported at the top: looked up when called, as tests replace flows.tasks.get_embedder
        from flows.tasks import get_embedder

        local = get_embedder(self.recipe.embedder)
        if self.recipe.runner.kind == "dask":
            return ClusterEncoder(local, self.recipe.runner, self.recipe.embedder)
        return local

    def minhasher(self):
        """What computes MinHash signatures: None (in process, the default), or the cluster."""
        if self.recipe.runner.kind == "dask":
            return cluster_minhashes(self.recipe.runner)
        return None

    def index(self, passages: list[Passage]) -> None:
        ids, texts = [p.id for p in passages], [p.text for p in passages]
        self.index_dir = self.dir / "index"
        self.index_key = corpus_key(self.embedder_id, ids, texts)
        if self.recipe.runner.kind == "dask":
            # reused while its key (embedder + passages) matches, like the cached task below
            PassageIndex.build_or_load(ids, texts, self.encoder(), self.index_dir)
            return
        key = content_key("index", str(self.index_dir), self.index_key)
        missing = not (self.index_dir / MANIFEST_FILE).is_file()
        task = build_index.with_options(result_storage=self.cache, refresh_cache=missing)
        task(
            key=key, folder=str(self.index_dir), embedder=self.recipe.embedder, ids=ids, texts=texts
        )

    def retrieve(self, batch: int, queries: list[str]) -> list[list[tuple[str, float]]]:
        k = self.recipe.respond.top_k
        key = content_key("retrieve", k, queries, self.index_key)
        task = retrieve_batch.with_options(
            result_storage=self.cache, task_run_name=f"retrieve-{batch}"
        )
        return task(
            key=key, folder=str(self.index_dir), embedder=self.recipe.embedder, queries=queries, k=k
        )

    def tools(self, texts: Mapping[str, str] | None = None) -> Tools:
        """What a stage is handed (flows/stages/base.py): this run's cached LLM, retrieval,
        encoders and stage timer, and the passages' `texts` by id; stages give back an Outcome,
        which `record` writes."""
        return Tools(
            recipe=self.recipe,
            llm=self.llm_all,
            llm_batch=self.llm,
            retrieve=self.retrieve,
            encoder=self.encoder,
            minhasher=self.minhasher,
            timed=self.timed,
            lineage=self.lineage,
            model_id=self.model_id,
            cache=self.cache,
            run_dir=self.dir,
            texts=texts if texts is not None else {},
        )

    def record(self, outcome: Outcome) -> list[Record]:
        """Write a stage's outcome: its stage folders in order, its manifest sections; returns the
        records that go on (its extra datasets are the caller's, for the export)."""
        for step in outcome.steps:
            self.stage(step.name, step.n_in, step.kept, step.dropped)
        self.sections.update(outcome.manifest)
        return outcome.records

    def stage(self, name: str, n_in: int, kept: list[Record], dropped: list[Record]) -> None:
        """Write a stage's kept and rejected records and count them for the funnel."""
        number = len(self.stages)
        rundir.write_stage(self.dir, number, name, kept, dropped)
        self.rejected += dropped
        self.stages.append(stage_counts(name, n_in, kept, dropped, self.seconds[name]))

    def corpus_stage(self, corpus: Corpus) -> None:
        """Passages as records (text in `output`), so the corpus funnel has the same files."""
        kept = [passage_record(p) for p in corpus.passages]
        dropped = [passage_record(p).drop("corpus", reason) for p, reason in corpus.dropped]
        self.stage("corpus", len(kept) + len(dropped), kept, dropped)

    def streamed_corpus_stage(self, streamed: StreamedCorpus) -> None:
        """A streamed corpus: its index folder and key serve retrieval; the funnel counts the
        indexed passages (they are in index/passages.parquet, not in the stage's kept file)."""
        self.index_dir, self.index_key = self.dir / "index", streamed.key
        dropped = [passage_record(p).drop("corpus", reason) for p, reason in streamed.dropped]
        self.stage("corpus", streamed.count + len(dropped), [], dropped)
        counts = self.stages[-1]
        counts["kept"] = streamed.count
        counts["origins"].setdefault("corpus", {})["kept"] = streamed.count

    def finish(self, records: list[Record], started: float, datasets: Datasets) -> Path:
        """Export the final records and the stages' extra datasets (dpo.jsonl...), and write the
        manifest; returns the export folder."""
        manifest = {
            "name": self.recipe.name,
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.time() - started, 1),
            "records": len(records),
            "round": self.round,
            "model_id": self.model_id,
            "backend": self.backend,
            "embedder_id": self.embedder_id,
            "code_version": code_version(),
            "flow_run_id": flow_run_id(),  # the Prefect flow run that made it (None outside one)
            "versions": versions(),
            "llm_calls_this_process": dict(LLM_CALLS),
            "failed_requests": len(self.failed_requests),
            "stages": self.stages,
            **{
                name: self.sections.get(name, {})
                for name in ("calibration", "decontamination", "support")
            },
            "origins": dict(Counter(r.meta.get("origin", "self_instruct") for r in records)),
            "datasets": {name: len(rows) for name, rows in datasets.items()},
            "recipe": self.recipe.model_dump(),
            "recipe_yaml": recipe_yaml(self.recipe),
        }
        if self.backend == "openai":
            manifest["openai"] = dict(OPENAI_STATS)  # this process's requests, retries included
        if self.failed_requests or (self.dir / FAILED_FILE).is_file():
            # what is left of earlier attempts belongs to batches this recipe no longer asks for
            write_jsonl_atomic(self.dir / FAILED_FILE, self.failed_requests)
        card = data_card(manifest, records)
        export = write_export(self.dir, records, card, self.rejected, datasets)
        manifest["engine"] = engine_time()
        rundir.write_manifest(self.dir, manifest)
        publish_run(manifest, records, self.rejected, card, self.dir)  # the dashboard's view
        return export

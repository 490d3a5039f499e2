"""Checks the commands make before a flow starts: bad input fails fast and writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

from generators.errors import SelfAlignError


def check_model(recipe) -> None:
    """A local model must resolve; a server's model needs only its API key variable set."""
    if recipe.model.backend == "openai":
        from generators.backends.openai import api_key_from

        api_key_from(recipe.model.openai.api_key_env, "model.openai.api_key_env")
        return
    from generators.models import resolve_model

    resolve_model(recipe.model.name)


def prefect_defaults() -> None:
    # The temporary local server needs ~13 s to start here; Prefect's default limit is 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def check_inputs(recipe) -> None:
    """Check seeds, corpus and model before the flow starts: bad input fails fast, writes nothing.

    Reads the corpus once without chunking; the flow reads it again (a second streamed pass).
    """
    from generators.seeds import load_seeds

    load_seeds(recipe.seeds, recipe.seeds_max_chars)
    if recipe.s3ft.enabled and recipe.s3ft.gold_set:
        load_seeds(recipe.s3ft.gold_set)
    if recipe.calibration.check_set:
        from filters.calibration import load_qa

        load_qa(recipe.calibration.check_set)
    check_corpus(recipe)
    check_heldout(recipe)
    check_model(recipe)
    if recipe.train.enabled:
        check_train(recipe)
    check_runs_dir(recipe)


def check_corpus(recipe) -> None:
    """Every document readable, and at least one with text (else the flow stops at ingest)."""
    from generators.corpus import iter_documents

    documents = with_text = 0
    for _, text in iter_documents(recipe.corpus.path, recipe.corpus.on_bad_record):
        documents += 1
        with_text += bool(text.strip())
    if documents == 0:
        raise SelfAlignError(f"{recipe.corpus.path}: the corpus has no documents")
    if with_text == 0:
        raise SelfAlignError(f"{recipe.corpus.path}: empty corpus: no document has any text")


def check_heldout(recipe) -> None:
    """Every held-out file the decontamination stage will read (QA sets and the knowledge set)
    parses, so a bad one stops the command before generation rather than at the last stage."""
    if not recipe.decontaminate.enabled:
        return
    from flows.stages.decontaminate import heldout_sources, heldout_texts

    for path in heldout_sources(recipe):
        heldout_texts(path, path == recipe.train.eval.knowledge)


def check_runs_dir(recipe) -> None:
    """The run folder can be made where `runs_dir` points, before the flow starts.

    Probed by making (and removing) a temp folder in the nearest existing parent, so a read-only
    place fails here even for root, whose permission checks always pass.
    """
    import tempfile

    target = Path(recipe.runs_dir).resolve() / recipe.name
    existing = next(p for p in (target, *target.parents) if p.exists())
    where = f"runs_dir {recipe.runs_dir!r}"
    if not existing.is_dir():
        raise SelfAlignError(f"{where}: {existing} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".selfalign-probe-", dir=existing))
    except OSError as e:
        raise SelfAlignError(
            f"{where}: cannot create folders in {existing} ({e.strerror})"
        ) from None


def check_train(recipe) -> None:
    """The train section's eval sets and TRL/peft field names, before any work."""
    from trainers.data import load_qa
    from trainers.sft import check_configs

    cfg = recipe.train
    for path in (cfg.eval.domain, cfg.eval.general):
        if path:
            load_qa(path)
    check_configs(cfg.lora, cfg.sft, cfg.dpo)
    if cfg.model:
        from generators.models import resolve_model

        resolve_model(cfg.model)

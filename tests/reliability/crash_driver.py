"""Run a recipe through the real flow on a scripted LLM, optionally SIGKILLing itself at one event.

    python -m tests.reliability.crash_driver RECIPE.yaml KILL EVENTS.jsonl

KILL is `none` or one event:
    llm:<stage>:<n>:before   inside the n-th LLM batch of <stage> (0-based), before the reply
    llm:<stage>:<n>:after    ... after the reply was computed, before the task returns it
    write_stage:<n>          inside the n-th stage write, after kept.parquet, before rejected
    export                   inside write_export, after train.jsonl, before train.parquet
    manifest                 just before the manifest is written
    index                    inside the index build, after embedding, before any index file

Every event this process reaches is appended to EVENTS.jsonl as {"event": ...} before a kill at
it, except `llm:...`, whose line means "this batch's reply was computed" (so a `before` kill
leaves no line and an `after` kill leaves one). The file is flushed line by line, so a killed
process still leaves what it did. `llm:<stage>:<n>` lines count the LLM batches per stage.

The LLM answers each conversation with a good reply picked by a hash of the conversation, so a
resumed process gets the same replies as an uninterrupted one whatever it asks first.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import flows.export
import flows.rundir
import flows.tasks
import generators.llm
import generators.retrieval.embedder
import generators.retrieval.index
from flows.recipe import load_recipe
from generators.backends.fake import FakeLLM
from tests.reliability.fakes import HashEmbedder, stage_of
from tests.reliability.test_bad_model_output import GOOD


def reply(conversation: list[dict[str, str]]) -> str:
    """A good reply for the conversation's stage, the same for the same conversation."""
    options = GOOD[stage_of(conversation)]
    digest = hashlib.sha256(json.dumps(conversation, sort_keys=True).encode()).hexdigest()
    return options[int(digest, 16) % len(options)]


class Driver:
    def __init__(self, kill: str, events: Path) -> None:
        self.kill, self.events = kill, events.open("a", encoding="utf-8")
        self.llm_batches: Counter = Counter()
        self.stage_writes = 0

    def event(self, name: str, kill_at: str | None = None) -> None:
        """Log `name`; die if the armed kill is `kill_at` (default: `name`)."""
        self.events.write(json.dumps({"event": name}) + "\n")
        self.events.flush()
        self.maybe_kill(kill_at or name)

    def maybe_kill(self, point: str) -> None:
        if point == self.kill:
            os.kill(os.getpid(), signal.SIGKILL)

    def install(self) -> None:
        def no_model(*args, **kwargs):
            raise AssertionError("a real model was loaded")

        generators.llm.load_backend = no_model
        generators.retrieval.embedder.Embedder = no_model
        embedder = HashEmbedder()
        flows.tasks.get_embedder = lambda name: embedder
        llm = FakeLLM(reply)
        chat = llm.chat

        def counted_chat(conversations, sampling):
            stage = stage_of(conversations[0])
            n = self.llm_batches[stage]
            self.llm_batches[stage] += 1
            self.maybe_kill(f"llm:{stage}:{n}:before")
            replies = chat(conversations, sampling)
            self.event(f"llm:{stage}:{n}", kill_at=f"llm:{stage}:{n}:after")
            return replies

        llm.chat = counted_chat
        flows.tasks.get_llm = lambda backend, model, options="": llm
        self.wrap_writes()
        self.wrap_index()

    def wrap_writes(self) -> None:
        write_stage, write_format = flows.rundir.write_stage, flows.export.write_format
        write_manifest = flows.rundir.write_manifest

        def killing_write_stage(run_dir, number, stage, kept, dropped):
            name = f"write_stage:{self.stage_writes}"
            self.stage_writes += 1
            if name == self.kill:
                folder = flows.rundir.stage_dir(run_dir, number, stage)
                flows.rundir.write_records(folder / "kept.parquet", kept)
            self.event(name)
            write_stage(run_dir, number, stage, kept, dropped)

        def killing_write_format(records, fmt, out):
            if fmt == "parquet" and out.parent.name == ".export.tmp":
                self.event("export")  # train.jsonl is written, the rest is not
            return write_format(records, fmt, out)

        def killing_write_manifest(run_dir, manifest):
            self.event("manifest")
            write_manifest(run_dir, manifest)

        flows.rundir.write_stage = killing_write_stage
        flows.export.write_format = killing_write_format
        flows.rundir.write_manifest = killing_write_manifest

    def wrap_index(self) -> None:
        build_or_load = generators.retrieval.index.PassageIndex.build_or_load
        driver = self

        class KillingEmbedder:
            """Encodes, then logs `index` (and dies there when armed)."""

            def __init__(self, inner) -> None:
                self.inner, self.model_id, self.dim = inner, inner.model_id, inner.dim

            def encode(self, texts, batch_size: int = 64):
                vecs = self.inner.encode(texts, batch_size)
                driver.event("index")
                return vecs

        def killing_build_or_load(ids, texts, embedder, folder):
            return build_or_load(ids, texts, KillingEmbedder(embedder), folder)

        generators.retrieval.index.PassageIndex.build_or_load = staticmethod(killing_build_or_load)


def main(recipe: str, kill: str, events: str) -> None:
    Driver(kill, Path(events)).install()
    from flows.pipeline import self_specialize

    print(self_specialize(recipe=load_recipe(recipe).model_dump()))


if __name__ == "__main__":
    main(*sys.argv[1:4])

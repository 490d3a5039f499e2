"""The demo job until the Self-Specialization flow lands: grounded answers to the demo seeds.

Loads the biomedical seeds and corpus from data/biomed, indexes the corpus (faiss, cached in the
run folder), retrieves passages for each seed task, answers it with the real default model and
writes the records with their lineage to `<out>/responses.jsonl`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from generators.embedder import Embedder
from generators.index import PassageIndex
from generators.io import read_jsonl, write_jsonl_atomic, write_text_atomic
from generators.llm import Sampling, load_backend
from generators.records import Record
from generators.respond import build_grounded_prompt

log = logging.getLogger("selfalign")

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "biomed"
TOP_K = 2
# Greedy, with a mild repetition penalty: SmolLM2-135M otherwise loops on long answers.
SAMPLING = Sampling(max_tokens=160, temperature=0.0, repetition_penalty=1.15, seed=0)


@dataclass
class SmokeResult:
    path: Path
    count: int
    model_id: str
    tokens_per_s: float
    examples: list[Record]


def run_smoke(
    out: Path, backend: str = "auto", model: str = "default", limit: int = 20
) -> SmokeResult:
    seeds = read_jsonl(DATA_DIR / "seeds.jsonl")[:limit]
    corpus = read_jsonl(DATA_DIR / "corpus.jsonl")
    texts = {row["id"]: row["text"] for row in corpus}
    log.info("demo: %d seed tasks, %d passages from %s", len(seeds), len(texts), DATA_DIR)
    index, _ = PassageIndex.build_or_load(
        list(texts), list(texts.values()), Embedder(), out / "index"
    )
    tasks = [(s["id"], s["instruction"], s["instances"][0].get("input", "")) for s in seeds]
    hits = index.search([f"{instr}\n{inp}".strip() for _, instr, inp in tasks], k=TOP_K)

    llm = load_backend(backend, model, progress=True)
    log.info("answering %d tasks with %s", len(seeds), llm.model_id)
    conversations = [
        build_grounded_prompt(instr, inp, [(pid, texts[pid]) for pid, _ in found])
        for (_, instr, inp), found in zip(tasks, hits, strict=True)
    ]
    tokens_before, start = llm.usage["output_tokens"], time.perf_counter()
    outputs = llm.chat(conversations, SAMPLING)
    seconds = time.perf_counter() - start
    tokens = llm.usage["output_tokens"] - tokens_before

    records = [
        Record(
            instruction=instr,
            input=inp,
            output=completions[0],
            passages=tuple(pid for pid, _ in found),
            meta={
                "seed_id": sid,
                "passage_scores": [round(s, 4) for _, s in found],
                "model_id": llm.model_id,
            },
        )
        for (sid, instr, inp), found, completions in zip(tasks, hits, outputs, strict=True)
    ]
    path = out / "responses.jsonl"
    write_jsonl_atomic(path, (r.to_dict() for r in records))
    manifest = {
        "job": "demo-smoke",
        "model_id": llm.model_id,
        "backend": type(llm).__name__,
        "records": len(records),
        "output_tokens": tokens,
        "generation_seconds": round(seconds, 2),
    }
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=2))
    return SmokeResult(
        path.resolve(), len(records), llm.model_id, tokens / max(seconds, 1e-9), records[:3]
    )

"""SIGKILL a run at random points across its stages, resume it, and get the uninterrupted result.

Each run is a subprocess (tests/reliability/crash_driver.py: the real flow on a scripted LLM and a
hashing embedder) reporting to one Prefect server shared by the module. The kill points are drawn
with a fixed seed from the events of an uninterrupted reference run, so each one fires, and cover
every kind: an LLM batch of each stage (before or after its reply), a stage write, the export, the
manifest and the index build. After each kill the same command resumes the run; its export must
equal the reference's byte for byte, and it may redo at most one LLM batch per stage.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from flows.ops.ui import api_url, start_server, stop_server, wait_healthy
from tests.reliability.fakes import tiny_recipe

pytestmark = pytest.mark.slow  # ~21 flow runs in subprocesses: ~2 min on 2 cores

ROOT = Path(__file__).resolve().parents[2]
SEED = 20240611
POINTS = 10
KINDS = (
    "generate",
    "classify",
    "instances",
    "respond",
    "write_stage",
    "export",
    "manifest",
    "index",
)
RUN_TIMEOUT = 300  # seconds for one run; ~5 s each on 2 cores with a running server


@pytest.fixture(scope="module")
def server_env(tmp_path_factory):
    """The environment for driver subprocesses: one real Prefect server for the whole module."""
    home = tmp_path_factory.mktemp("prefect-home")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = home / "server.log"
    proc = start_server("127.0.0.1", port, log, home)
    try:
        wait_healthy(proc, "127.0.0.1", port, log)
        yield {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": api_url("127.0.0.1", port),
            "PYTHONPATH": str(ROOT),
        }
    finally:
        stop_server(proc)


def run_driver(env: dict, folder: Path, kill: str = "none") -> tuple[int, Path, list[str], str]:
    """Run the recipe of `folder` (returncode, run folder, events logged, output tail)."""
    recipe = tiny_recipe(folder.parent, "crash", 8, runs_dir=folder / "runs")
    recipe["generate"]["batch_prompts"] = 2  # 4 generation batches
    recipe["batch_records"] = 4  # several classify / instances / respond batches
    folder.mkdir(exist_ok=True)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    events = folder / f"events-{kill}.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.crash_driver", str(path), kill, str(events)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    lines = events.read_text().splitlines() if events.exists() else []
    logged = [json.loads(line)["event"] for line in lines]
    return proc.returncode, folder / "runs" / "crash", logged, (proc.stdout + proc.stderr)[-3000:]


def llm_batches(events: list[str]) -> Counter:
    """LLM batches per stage whose reply was computed: ['llm:generate:0', ...] -> {generate: 1}."""
    return Counter(e.split(":")[1] for e in events if e.startswith("llm:"))


def kill_points(events: list[str], rng: random.Random) -> list[str]:
    """One random point of every kind, then random others, all from `events` of a whole run."""
    candidates = []
    for event in dict.fromkeys(events):  # in order, once each
        if event.startswith("llm:"):
            candidates += [f"{event}:before", f"{event}:after"]
        else:
            candidates.append(event)

    def kind(point: str) -> str:
        return point.split(":")[1] if point.startswith("llm:") else point.split(":")[0]

    chosen = [rng.choice([p for p in candidates if kind(p) == k]) for k in KINDS]
    rest = [p for p in candidates if p not in chosen]
    return chosen + rng.sample(rest, POINTS - len(chosen))


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(server_env, tmp_path):
    rc, ref_dir, ref_events, out = run_driver(server_env, tmp_path / "reference")
    assert rc == 0, out
    ref_train = (ref_dir / "export" / "train.jsonl").read_bytes()
    ref_ids = ids(ref_dir / "export" / "train.jsonl")
    ref_rejected = ids(ref_dir / "export" / "rejected.jsonl")
    ref_batches = llm_batches(ref_events)
    assert len(ref_ids) == len(set(ref_ids)) >= 8 and ref_rejected
    assert all(ref_batches[s] >= 3 for s in ("generate", "classify", "instances", "respond"))

    points = kill_points(ref_events, random.Random(SEED))
    print(f"\ncrash-resume seed {SEED}: kill points {points}; reference batches {ref_batches}")
    problems, survived, lost = [], 0, 0
    for number, point in enumerate(points):
        folder = tmp_path / f"point-{number:02d}"
        rc, run_dir, killed_events, out = run_driver(server_env, folder, point)
        train = run_dir / "export" / "train.jsonl"
        before = len(problems)
        if rc != -signal.SIGKILL:
            problems.append(f"{point}: exited {rc}, not killed\n{out}")
            continue
        if point == "manifest":  # the export is complete: it must be the reference's already
            if train.read_bytes() != ref_train:
                problems.append(f"{point}: the killed run's export differs from the reference")
        elif train.exists():
            problems.append(f"{point}: the killed run left an export")
        rc, _, resumed_events, out = run_driver(server_env, folder)
        if rc != 0:
            problems.append(f"{point}: the resumed run exited {rc}\n{out}")
            continue
        got = ids(train)
        lost += len(set(ref_ids) - set(got))
        if train.read_bytes() != ref_train or got != ref_ids:
            problems.append(f"{point}: train.jsonl differs from the reference ({len(got)} rows)")
        if ids(run_dir / "export" / "rejected.jsonl") != ref_rejected:
            problems.append(f"{point}: rejected.jsonl ids differ from the reference")
        killed, resumed = llm_batches(killed_events), llm_batches(resumed_events)
        for stage, n in ref_batches.items():
            if killed[stage] + resumed[stage] > n + 1:
                problems.append(
                    f"{point}: {stage} ran {killed[stage]} + {resumed[stage]} LLM batches "
                    f"(killed + resumed), the reference {n}"
                )
        survived += len(problems) == before
        print(f"  {point}: killed ran {dict(killed)}, resumed ran {dict(resumed)}")
    print(f"crash-resume: {survived}/{len(points)} kill points survived, {lost} records lost")
    assert not problems, "\n".join(problems)
    assert survived == len(points) >= POINTS and lost == 0

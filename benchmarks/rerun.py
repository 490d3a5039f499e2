"""A finished run rerun vs the first run: wall time ratio and the LLM calls the rerun makes.

    python benchmarks/rerun.py [--recipe flows/recipes/biomed-demo.yaml] [--set generate.prompts=18]

Both runs are the same `selfalign run RECIPE` command in a fresh process against one Prefect
server the script starts (as a user with `make ui` would have), into a scratch runs folder, so the
first run computes everything and the second finds every cached task. Reports both wall times, the
ratio rerun / first (goal <= 0.05) and the rerun's LLM conversations (goal 0), read from the
manifests the runs write.

The first run also gives the engine's busy fraction (P2): the seconds the engine spent generating
(`engine.busy_seconds` in its manifest) over the wall time from the moment the engine was ready
(`engine.ready_at`) to the process's exit. Goal >= 0.9: the CPU stages between LLM batches must
stay small or overlap generation.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.ops.ui import api_url, start_server, stop_server, wait_healthy  # noqa: E402

SELFALIGN = Path(sys.executable).with_name("selfalign")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_run(recipe: Path, sets: list[str], env: dict[str, str]) -> tuple[float, Path, float]:
    """Seconds of one `selfalign run` process, the run folder it printed, and its end time."""
    command = [str(SELFALIGN), "run", str(recipe)] + [a for s in sets for a in ("--set", s)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds, ended = time.perf_counter() - start, time.time()
    if done.returncode != 0:
        sys.exit(f"run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    run_line = next(line for line in done.stdout.splitlines() if line.startswith("run: "))
    return seconds, Path(run_line.removeprefix("run: ")), ended


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "flows/recipes/biomed-demo.yaml")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="selfalign-rerun-") as tmp:
        scratch = Path(tmp)
        port, log = free_port(), scratch / "server.log"
        server = start_server("127.0.0.1", port, log, home=scratch / "prefect-home")
        try:
            wait_healthy(server, "127.0.0.1", port, log)
            env = {**os.environ, "PREFECT_API_URL": api_url("127.0.0.1", port)}
            sets = [*args.sets, f"runs_dir={scratch / 'runs'}"]
            first, run_dir, first_ended = timed_run(args.recipe, sets, env)
            calls_first = json.loads((run_dir / "manifest.json").read_text())
            again, _, _ = timed_run(args.recipe, sets, env)
            calls_again = json.loads((run_dir / "manifest.json").read_text())
        finally:
            stop_server(server)
    records = calls_again["records"]
    print(f"recipe {args.recipe.name} {' '.join(args.sets)}: {records} records")
    print("| run | wall s | LLM conversations |")
    print("|---|---|---|")
    print(f"| first | {first:.1f} | {calls_first['llm_calls_this_process']['conversations']} |")
    print(f"| rerun | {again:.1f} | {calls_again['llm_calls_this_process']['conversations']} |")
    print(f"rerun / first = {again / first:.3f} (goal <= 0.05)")
    engine = calls_first["engine"]
    ready_for = first_ended - engine["ready_at"]
    print(
        f"first run: engine ready for {ready_for:.1f} s up to the process's exit "
        f"({engine['seconds_since_ready']:.1f} s up to the manifest), generating for "
        f"{engine['busy_seconds']:.1f} s ({engine['output_tokens']} tokens): busy fraction "
        f"{engine['busy_seconds'] / ready_for:.3f} to exit, {engine['busy_fraction']:.3f} to the "
        "manifest (goal >= 0.9)"
    )


if __name__ == "__main__":
    main()

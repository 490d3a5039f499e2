"""A persistent response cache for remote LLM requests: one sqlite3 file in a folder.

Keys are hex digests of a request (model, messages, sampling: `request_key`); values are the
request's completions. Only successful replies are stored, so a failed request is asked again the
next time. One connection per cache object, shared by threads under a lock; several processes can
use the same file (sqlite locks it, and a writer waits up to `LOCK_WAIT_S`).

Not handled: eviction. The file grows with every new request; delete the folder to start over.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from generators.records import json_digest

CACHE_FILE = "responses.sqlite3"
LOCK_WAIT_S = 60.0  # another process writing: wait this long before sqlite gives up


def request_key(request: dict[str, Any]) -> str:
    """sha256 of the request's JSON: {"model": "m", "messages": [...], "seed": 3} -> '9c1e...'."""
    return json_digest(request)


class ResponseCache:
    """completions (a list of strings) by request key, kept in `<folder>/responses.sqlite3`."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / CACHE_FILE
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=LOCK_WAIT_S, check_same_thread=False, isolation_level=None
        )
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, completions TEXT)"
            )

    def get(self, key: str) -> list[str] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT completions FROM responses WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, completions: list[str]) -> None:
        blob = json.dumps(completions, ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, completions) VALUES (?, ?)", (key, blob)
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

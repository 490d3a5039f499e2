"""UDSTrainer: a `trl.SFTTrainer` that backpropagates only the UDS top-k rows of each micro-batch.

    trainer = UDSTrainer(model=..., args=SFTConfig(...), train_dataset=rows, uds_k=2)

Each training micro-batch of B rows gets one no-grad forward; trainers/uds.py scores the rows
and picks k, and the normal SFT loss runs on those k rows only. Evaluation batches are not
filtered. Importing this module imports torch and trl; the selection math stays in
trainers/uds.py, which imports neither.

Not handled: packing / padding-free batches (one packed row holds many samples; refused at
construction); with gradient accumulation > 1 the loss normaliser `num_items_in_batch` is
rescaled by this micro-batch's kept share of label tokens, an estimate of the true kept total.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from trl import SFTTrainer

from trainers.uds import (
    DEFAULT_ALPHA,
    DEFAULT_BUFFER,
    DEFAULT_K,
    DEFAULT_SKETCH_DIM,
    LogitSketch,
    SketchMemory,
    keep_rows,
    label_count,
    select_rows,
    trim_padding,
)


class UDSTrainer(SFTTrainer):
    """SFTTrainer that backpropagates only the UDS top-k rows of each training micro-batch."""

    def __init__(
        self,
        *args: Any,
        uds_alpha: float = DEFAULT_ALPHA,
        uds_k: int = DEFAULT_K,
        uds_buffer: int = DEFAULT_BUFFER,
        uds_sketch_dim: int = DEFAULT_SKETCH_DIM,
        uds_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if self.args.packing or self.args.padding_free:
            raise ValueError("UDSTrainer selects rows: packing / padding_free are not handled")
        if uds_k < 1:
            raise ValueError(f"uds_k must be >= 1, got {uds_k}")
        self.uds_alpha, self.uds_k = uds_alpha, uds_k
        self.uds_sketch_dim, self.uds_seed = uds_sketch_dim, uds_seed
        self.uds_sketch: LogitSketch | None = None  # built when the vocabulary size is seen
        self.uds_memory = SketchMemory(uds_buffer)
        # scoring_seconds: all selection overhead (no-grad forward + scores + top-k);
        # forward_seconds: the no-grad forward part of it
        self.uds_stats: dict[str, float] = dict.fromkeys(("steps", "candidates", "selected"), 0)
        self.uds_stats.update(scoring_seconds=0.0, forward_seconds=0.0)

    def uds_select(self, model: Any, inputs: dict[str, Any]) -> list[int]:
        """No-grad forward of the candidates, scores, top-k rows; updates memory and stats."""
        start = time.perf_counter()
        labels = inputs["labels"]
        with torch.no_grad():
            forward = {k: v for k, v in inputs.items() if k != "labels"}
            logits = model(**forward, use_cache=False).logits
            forwarded = time.perf_counter()
            vocab, dim, seed = logits.shape[-1], self.uds_sketch_dim, self.uds_seed
            self.uds_sketch = self.uds_sketch or LogitSketch(vocab, dim, seed)
            sketch, memory = self.uds_sketch, self.uds_memory
            rows = select_rows(logits, labels, sketch, memory, self.uds_alpha, self.uds_k)
        stats = self.uds_stats
        stats["steps"] += 1
        stats["candidates"] += labels.shape[0]
        stats["selected"] += len(rows)
        stats["forward_seconds"] += forwarded - start
        stats["scoring_seconds"] += time.perf_counter() - start
        return rows

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """The SFT loss of the selected rows while training; of every row otherwise."""
        if model.training:
            rows = self.uds_select(model, inputs)
            total = label_count(inputs["labels"])
            inputs = trim_padding(keep_rows(inputs, rows))
            if num_items_in_batch is not None and total > 0:
                # exact with gradient accumulation 1: the kept rows' label tokens
                num_items_in_batch = num_items_in_batch * label_count(inputs["labels"]) / total
        return super().compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )

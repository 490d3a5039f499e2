"""Padding-free batches (the trainer's default): rows laid end to end in one sequence with
per-row position ids give every row the loss it has alone, so no row attends to another, and
the loss still covers the answers only. Real default model, no training step."""

from __future__ import annotations

import pytest
import torch

from trainers.sft import (
    SFT_DEFAULTS,
    Progress,
    padding_free_cut,
    prompt_completion,
    trainer_args,
    trainer_kwargs,
    truncated,
)
from trainers.uds import IGNORE_INDEX

QA = [
    ("What do mitochondria make?", "ATP, through oxidative phosphorylation."),
    ("Which organelle holds chromosomes?", "The nucleus, behind a double membrane."),
    ("What carries oxygen in blood?", "Hemoglobin in red blood cells."),
    ("Where does translation happen?", "At ribosomes, in the cytoplasm."),
]
ROWS = [
    prompt_completion([{"role": "user", "content": q}, {"role": "assistant", "content": a}])
    for q, a in QA
]


def row_losses(model, ids: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor) -> list:
    """Mean next-token loss of each row in a flattened batch (rows start where position is 0)."""
    with torch.no_grad():
        logits = model(input_ids=ids, position_ids=positions).logits[0]
    starts = (positions[0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
    out = []
    for a, b in zip(starts, starts[1:], strict=False):
        target = labels[0, a + 1 : b]
        out.append(
            float(
                torch.nn.functional.cross_entropy(
                    logits[a : b - 1], target, ignore_index=IGNORE_INDEX
                )
            )
        )
    return out


@pytest.mark.slow
def test_a_padding_free_batch_gives_each_row_its_loss_alone(default_model, tmp_path) -> None:
    from trl import SFTConfig, SFTTrainer

    args = trainer_args(
        SFTConfig, SFT_DEFAULTS, {"per_device_train_batch_size": 4}, "sft", tmp_path
    )
    assert args.padding_free  # the default
    cut = padding_free_cut(args)
    kwargs = trainer_kwargs(default_model.path, ROWS, args, {}, Progress(), str)
    trainer = SFTTrainer(**kwargs)
    trainer.train_dataset = truncated(trainer.train_dataset, cut)
    tokenizer, model = kwargs["processing_class"], trainer.model.eval()
    batch = next(iter(trainer.get_train_dataloader()))
    ids, labels, positions = batch["input_ids"], batch["labels"], batch["position_ids"]
    assert ids.shape[0] == 1 and "attention_mask" not in batch  # one sequence, nothing padded
    assert int((positions[0] == 0).sum()) == 4

    packed = row_losses(model, ids, labels, positions)
    alone = []
    starts = (positions[0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
    for a, b in zip(starts, starts[1:], strict=False):
        row = slice(a, b)
        alone += row_losses(model, ids[:, row], labels[:, row], positions[:, row])
    assert packed == pytest.approx(alone, rel=1e-4)
    # the answers, and only they, carry labels
    answers = {a + "<|im_end|>\n" for _, a in QA}
    for a, b in zip(starts, starts[1:], strict=False):
        kept = ids[0, a:b][labels[0, a:b] != IGNORE_INDEX]
        assert tokenizer.decode(kept) in answers

    # the check can fail: one running position over all rows lets later rows see earlier ones
    running = torch.arange(ids.shape[1]).unsqueeze(0)
    with torch.no_grad():
        logits = model(input_ids=ids, position_ids=running).logits[0]
    a, b = starts[1], starts[2]
    leaked = float(
        torch.nn.functional.cross_entropy(
            logits[a : b - 1], labels[0, a + 1 : b], ignore_index=IGNORE_INDEX
        )
    )
    assert leaked != pytest.approx(alone[1], rel=1e-3)


def test_padding_free_moves_max_length_to_the_truncation(tmp_path) -> None:
    from datasets import Dataset
    from trl import SFTConfig

    args = trainer_args(SFTConfig, SFT_DEFAULTS, {"max_length": 3}, "sft", tmp_path)
    assert padding_free_cut(args) == 3 and args.max_length is None
    rows = Dataset.from_list(
        [
            {"input_ids": [1, 2, 3, 4, 5], "labels": [-100, -100, 3, 4, 5]},
            {"input_ids": [1, 2, 3, 4], "labels": [-100, -100, -100, 4]},
        ]
    )
    cut = truncated(rows, 3)
    assert cut["input_ids"] == [[1, 2, 3]] and cut["labels"] == [[-100, -100, 3]]
    packed = trainer_args(SFTConfig, SFT_DEFAULTS, {"packing": True}, "sft", tmp_path)
    assert padding_free_cut(packed) is None and packed.max_length == 512

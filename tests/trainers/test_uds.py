"""UDS selection: pure scoring on hand-made tensors, and a real-model LoRA run on prompt/completion
rows (slow). The answer-only labels it relies on are tested in test_loss_masking.py."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from trainers.uds import (
    LogitSketch,
    SketchMemory,
    keep_rows,
    nuclear_norm,
    sample_utilities,
    select_rows,
    top_k,
    trim_padding,
    uds_scores,
)

torch.set_num_threads(2)
SQRT2 = math.sqrt(2)


@pytest.mark.parametrize("shape", [(6, 40), (40, 6), (12, 12), (1, 9), (9, 1)])
def test_nuclear_norm_matches_numpy_svd(shape):
    x = np.random.default_rng(sum(shape)).normal(size=shape) * 5
    expected = np.linalg.svd(x, compute_uv=False).sum()
    assert nuclear_norm(torch.tensor(x, dtype=torch.float32)) == pytest.approx(expected, rel=1e-4)


def test_nuclear_norm_of_empty_matrix_is_zero():
    assert nuclear_norm(torch.zeros(0, 7)) == 0.0


def one_sample(seed: int, steps: int = 5, vocab: int = 11) -> torch.Tensor:
    return torch.randn(1, steps, vocab, generator=torch.Generator().manual_seed(seed))


def test_sample_utilities_use_shifted_label_positions_only():
    logits = one_sample(0)
    labels = torch.tensor([[-100, -100, 3, 4, -100]])  # tokens 2, 3 <- logits rows 1, 2
    expected = nuclear_norm(logits[0, 1:3])
    assert sample_utilities(logits, labels).tolist() == pytest.approx([expected])

    changed = logits.clone()
    changed[0, [0, 3, 4]] = torch.randn(3, 11) * 10  # rows predicting unlabeled tokens
    assert sample_utilities(changed, labels).tolist() == pytest.approx([expected])
    changed[0, 2] += 5.0
    assert sample_utilities(changed, labels).item() != pytest.approx(expected)


def test_sample_utilities_without_labels_is_zero():
    logits = torch.cat([one_sample(1), one_sample(2)])
    labels = torch.tensor([[-100] * 5, [-100, 1, -100, -100, -100]])  # the second: row 0 only
    utilities = sample_utilities(logits, labels)
    assert utilities.tolist() == pytest.approx([0.0, float(logits[1, 0].norm())])


def test_sketch_is_a_deterministic_unit_vector_of_the_right_dim():
    rows = one_sample(3, vocab=64)[0]
    a, b = LogitSketch(64, 8, seed=7), LogitSketch(64, 8, seed=7)
    assert a(rows).shape == (8,)
    assert torch.equal(a(rows), b(rows))
    assert float(a(rows).norm()) == pytest.approx(1.0, abs=1e-6)
    assert not torch.allclose(a(rows), LogitSketch(64, 8, seed=8)(rows))


def test_sketch_ignores_a_per_row_shift_and_keeps_similar_logits_close():
    sketch = LogitSketch(64, 16)
    rows = one_sample(4, vocab=64)[0] * 3
    shifted = rows + torch.arange(5.0)[:, None]  # softmax-invariant shift of each row
    assert torch.allclose(sketch(rows), sketch(shifted), atol=1e-5)
    near = rows + 0.1 * one_sample(5, vocab=64)[0]
    far = one_sample(6, vocab=64)[0] * 3
    assert float(sketch(rows) @ sketch(near)) > 0.99 > float(sketch(rows) @ sketch(far))


def test_sketch_of_no_rows_is_zero_and_dim_is_checked():
    assert LogitSketch(64, 4)(torch.zeros(0, 64)).tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="1..33"):
        LogitSketch(64, 34)


def test_memory_is_fifo():
    memory = SketchMemory(3)
    memory.add(torch.tensor([[0.0], [1.0]]))
    memory.add(torch.tensor([[2.0], [3.0], [4.0]]))
    assert len(memory) == 3
    assert memory.stacked().flatten().tolist() == [2.0, 3.0, 4.0]


def test_memory_diversity_is_mean_l2_distance_and_zero_when_empty():
    memory = SketchMemory(4)
    queries = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert memory.diversity(queries).tolist() == [0.0, 0.0]
    memory.add(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert memory.diversity(queries).tolist() == pytest.approx([SQRT2 / 2, (2 + SQRT2) / 2])


def test_scores_normalise_utility_by_the_batch_max_and_add_alpha_diversity():
    memory = SketchMemory(4)
    memory.add(torch.tensor([[1.0, 0.0]]))
    sketches = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    scores = uds_scores(torch.tensor([2.0, 4.0, 8.0]), sketches, memory, alpha=0.5)
    assert scores.tolist() == pytest.approx([0.25, 0.5 + 0.5 * SQRT2, 1.0])
    assert top_k(scores, 1) == [1]
    assert top_k(scores, 2) == [1, 2]
    assert top_k(uds_scores(torch.tensor([2.0, 4.0, 8.0]), sketches, memory, 0.0), 1) == [2]


def scaled_pairs(scales: list[float], vocab: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample b: label rows scales[b] * (e_2b, e_2b+1) -> singular values (s, s), norm 2 s."""
    logits = torch.zeros(len(scales), 3, vocab)
    for b, s in enumerate(scales):
        logits[b, 0, (2 * b) % vocab] = s
        logits[b, 1, (2 * b + 1) % vocab] = s
    labels = torch.tensor([[-100, 1, 1]] * len(scales))
    return logits, labels


def test_top_k_on_fixed_logits_with_empty_memory_is_utility_order():
    logits, labels = scaled_pairs([1.0, 3.0, 2.0, 4.0])
    utilities = sample_utilities(logits, labels)
    assert utilities.tolist() == pytest.approx([2.0, 6.0, 4.0, 8.0])
    sketches = LogitSketch(8, 4).batch(logits, labels)
    scores = uds_scores(utilities, sketches, SketchMemory(8), alpha=0.5)
    assert scores.tolist() == pytest.approx([0.25, 0.75, 0.5, 1.0])
    assert top_k(scores, 2) == [1, 3]

    memory = SketchMemory(8)
    assert select_rows(logits, labels, LogitSketch(8, 4), memory, 0.5, 2) == [1, 3]
    assert torch.equal(memory.stacked(), sketches[[1, 3]])  # the chosen rows' sketches, in order


def test_a_duplicate_of_memory_loses_to_a_novel_sample_at_equal_utility():
    logits, labels = scaled_pairs([2.0, 2.0], vocab=16)
    sketch, memory = LogitSketch(16, 8), SketchMemory(8)
    sketches = sketch.batch(logits, labels)
    memory.add(sketches[:1])  # sample 0 was selected before
    assert top_k(uds_scores(sample_utilities(logits, labels), sketches, memory, 0.5), 1) == [1]
    assert top_k(uds_scores(sample_utilities(logits, labels), sketches, memory, 0.0), 1) == [0]


def test_top_k_ties_and_clamping():
    assert top_k([0.5, 0.9, 0.9, 0.1], 1) == [1]
    assert top_k(torch.tensor([0.5, 0.9, 0.9, 0.1]), 2) == [1, 2]
    assert top_k([0.5, 0.9], 10) == [0, 1]
    assert top_k([0.5, 0.9], 0) == []


def test_keep_rows_and_trim_padding_slice_every_batch_tensor():
    inputs = {
        "input_ids": torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9]]),
        "attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]),
        "labels": torch.tensor([[1, 2, 3, -100], [4, 5, -100, -100], [6, 7, 8, 9]]),
        "flag": True,
    }
    kept = trim_padding(keep_rows(inputs, [0, 1]))
    assert kept["input_ids"].tolist() == [[1, 2, 3], [4, 5, 0]]
    assert kept["labels"].tolist() == [[1, 2, 3], [4, 5, -100]]
    assert kept["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert kept["flag"] is True
    assert trim_padding(keep_rows(inputs, [2]))["input_ids"].tolist() == [[6, 7, 8, 9]]


def test_import_loads_neither_torch_nor_trl():
    heavy = "torch", "trl", "transformers"
    code = f"import sys, trainers.uds; print(*(m in sys.modules for m in {heavy}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


QA_PAIRS = [
    ("What does DNA polymerase do?", "It copies DNA by adding nucleotides to a growing strand."),
    ("Where is insulin made?", "In the beta cells of the pancreatic islets."),
    ("What carries oxygen in blood?", "Haemoglobin in red blood cells."),
    ("What is a codon?", "Three nucleotides that code for one amino acid."),
    ("What does ATP store?", "Chemical energy in its phosphate bonds."),
    ("Which organelle makes ATP?", "The mitochondrion, by oxidative phosphorylation."),
    ("What is mitosis?", "Cell division that yields two identical daughter cells."),
    ("What do antibodies bind?", "Specific antigens, such as proteins on a pathogen's surface."),
    ("What is a ribosome for?", "It translates messenger RNA into protein."),
    ("Where does photosynthesis happen?", "In the chloroplasts of plant cells."),
    ("What is an enzyme?", "A protein that speeds up a chemical reaction."),
    ("What does the kidney filter?", "Blood, removing waste into urine."),
]


@pytest.mark.slow
def test_uds_trainer_trains_lora_on_k_of_b_rows(default_model, tmp_path):
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig

    from trainers.sft import prompt_completion
    from trainers.uds_trainer import UDSTrainer

    # prompt/completion rows, as train_sft feeds them: UDS scores and trains on the answers only
    rows = [
        prompt_completion([{"role": "user", "content": q}, {"role": "assistant", "content": a}])
        for q, a in QA_PAIRS
    ]
    args = SFTConfig(
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=4,
        max_length=128,
        max_steps=3,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        output_dir=str(tmp_path),
        dataloader_num_workers=0,
    )
    lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = UDSTrainer(
        model=default_model.path,
        args=args,
        train_dataset=Dataset.from_list(rows),
        peft_config=lora,
        uds_k=2,
    )
    name, weight = next((n, p) for n, p in trainer.model.named_parameters() if "lora_B" in n)
    before = weight.detach().clone()
    result = trainer.train()

    stats = trainer.uds_stats
    assert (stats["steps"], stats["candidates"], stats["selected"]) == (3, 12, 6)
    assert stats["scoring_seconds"] > stats["forward_seconds"] > 0
    assert len(trainer.uds_memory) == 6
    assert math.isfinite(result.training_loss) and result.training_loss > 0
    assert not torch.equal(before, weight.detach()), f"{name} did not change"

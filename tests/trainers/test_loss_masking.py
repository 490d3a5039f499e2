"""Answer-only loss on prompt/completion rows, for plain SFT and UDS, built as train_sft builds
them (real default model, no training step: one batch through `compute_loss`)."""

from __future__ import annotations

import pytest
import torch

from trainers.sft import SFT_DEFAULTS, Progress, prompt_completion, trainer_args, trainer_kwargs
from trainers.uds import IGNORE_INDEX

END_OF_TURN = "<|im_end|>\n"  # what SmolLM2's chat template puts after an assistant turn
QA = [
    ("What do mitochondria make?", "ATP, through oxidative phosphorylation."),
    ("Which organelle holds chromosomes?", "The nucleus."),
    ("What carries oxygen in blood?", "Hemoglobin in red blood cells."),
    ("Where does translation happen?", "At ribosomes, in the cytoplasm."),
]
ROWS = [
    prompt_completion([{"role": "user", "content": q}, {"role": "assistant", "content": a}])
    for q, a in QA
]


def answer_only_labels(tokenizer, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The labels a batch should carry: -100 on prompt and padding, the token on the answer.

    Each row's prompt length is that of its own prompt rendered with the generation prompt.
    """
    prompts = [
        tokenizer.apply_chat_template(
            r["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        for r in ROWS
    ]
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for i, (ids, used) in enumerate(zip(input_ids, mask, strict=True)):
        [start] = [len(p) for p in prompts if ids[: len(p)].tolist() == p]
        end = int(used.sum())
        labels[i, start:end] = ids[start:end]
    return labels


def mean_token_loss(model, inputs: dict, labels: torch.Tensor) -> float:
    """Mean next-token cross-entropy over the positions `labels` marks."""
    with torch.no_grad():
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        logits = model(input_ids=ids, attention_mask=mask).logits
    return float(
        torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX
        )
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sft", "uds"])
def test_loss_covers_the_answer_tokens_only(name, default_model, tmp_path, monkeypatch):
    from trl import SFTConfig, SFTTrainer

    from trainers.uds_trainer import UDSTrainer

    # padded batches (padding-free ones are tests/trainers/test_padding_free.py's)
    sft = {"max_length": 128, "per_device_train_batch_size": 4, "padding_free": False}
    args = trainer_args(SFTConfig, SFT_DEFAULTS, sft, "sft", tmp_path)
    # no LoRA dropout, so the loss can be recomputed by hand from the same weights
    kwargs = trainer_kwargs(default_model.path, ROWS, args, {"lora_dropout": 0.0}, Progress(), str)
    trainer = SFTTrainer(**kwargs) if name == "sft" else UDSTrainer(**kwargs, uds_k=2)
    tokenizer = kwargs["processing_class"]

    seen: list[dict] = []  # what reaches TRL's loss (for UDS: the kept rows only)
    original = SFTTrainer.compute_loss

    def spy(self, model, inputs, *args, **kw):
        seen.append(inputs)
        return original(self, model, inputs, *args, **kw)

    monkeypatch.setattr(SFTTrainer, "compute_loss", spy)
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    loss = float(trainer.compute_loss(trainer.model, batch).detach())

    [inputs] = seen
    assert inputs["labels"].shape[0] == (4 if name == "sft" else 2)
    expected = answer_only_labels(tokenizer, inputs["input_ids"], inputs["attention_mask"])
    assert torch.equal(inputs["labels"], expected)
    answers = {a + END_OF_TURN for _, a in QA}
    for ids, labels in zip(inputs["input_ids"], inputs["labels"], strict=True):
        assert tokenizer.decode(ids[labels != IGNORE_INDEX]) in answers
    assert loss == pytest.approx(mean_token_loss(trainer.model, inputs, expected), rel=1e-4)

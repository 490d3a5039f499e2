"""A toy model for the likelihood scorers' tests: a character-level "copier" that predicts the
character which followed the last earlier occurrence of the 4 characters before it (confidently),
and is uniform otherwise; with a one-token-per-character tokenizer."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from tests.trainers.test_evaluate import CharTokenizer

VOCAB, CONTEXT, CONFIDENCE = 128, 4, 10.0


class Copier:
    """Logits (batch, keep, VOCAB): CONFIDENCE on the copied character where there is one."""

    device = "cpu"

    def __call__(self, input_ids, attention_mask, position_ids, logits_to_keep):
        batch, width = input_ids.shape
        logits = torch.zeros(batch, width, VOCAB)
        for b in range(batch):
            start = int((attention_mask[b] == 0).sum())
            seq = input_ids[b, start:].tolist()
            for t in range(CONTEXT - 1, len(seq)):
                key = seq[t - CONTEXT + 1 : t + 1]
                for s in range(t - 1, CONTEXT - 2, -1):
                    if seq[s - CONTEXT + 1 : s + 1] == key:
                        logits[b, start + t, seq[s + 1] % VOCAB] = CONFIDENCE
                        break
        return SimpleNamespace(logits=logits[:, -logits_to_keep:])


class AsciiTokenizer(CharTokenizer):
    pad_token_id = 0

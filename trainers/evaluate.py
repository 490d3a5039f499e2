"""Held-out evaluation of a model before and after fine-tuning, and IFD scores (the promote
rule that reads these numbers is trainers/promote.py).

    answer loss   chat template [user: prompt] + generation prompt, then the answer and the
                  template's end-of-turn marker; only those answer tokens are scored (the same
                  split TRL's SFT trainer uses for prompt-completion rows)
    IFD           loss of the answer given the instruction / loss given an *empty user turn*
                  (Li et al. 2024, "From Quantity to Quality", Cherry LLM); the empty turn keeps
                  the system prompt and turn markers, so only the instruction itself is missing
    token F1      SQuAD-style bag-of-tokens F1 of a greedy generation against the gold answer

Not handled: models without a chat template (raises ValueError); multi-turn prompts; answers longer
than MAX_LENGTH are kept whole (never cut), so such a sequence is longer than MAX_LENGTH;
sampling-based generation scores.
"""

from __future__ import annotations

import gc
import re
import string
import time
import unicodedata
from collections import Counter
from typing import Any

from trainers.data import QA

# Longest scored sequence; longer prompts lose tokens from the left. SmolLM2 takes 8192, but 1024
# covers every held-out QA here and keeps CPU batches small.
MAX_LENGTH = 1024
# SQuAD v1.1 evaluate script: lowercase, drop punctuation and English articles.
ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCTUATION = set(string.punctuation)
N_EXAMPLES = 3  # generations kept in a report, enough to eyeball


def load_model(
    path: str, device: str | None = None, precision: str | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer) from a HF folder: fp32 on CPU, bf16 on CUDA (or `precision`, 'bf16' or
    'fp32'), eval mode, left padding."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if precision is not None:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"  # decoder-only generation continues from the right edge
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _render(tokenizer: Any, prompt: str, answer: str) -> tuple[str, str]:
    """(prompt text up to the assistant header, completion text = answer + end-of-turn)."""
    if not tokenizer.chat_template:
        raise ValueError("evaluate: the tokenizer has no chat template")
    user = [{"role": "user", "content": prompt}]
    head = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        [*user, {"role": "assistant", "content": answer}], tokenize=False
    )
    if full.startswith(head):
        return head, full[len(head) :]
    return head, answer + (tokenizer.eos_token or "")


def _tokens(tokenizer: Any, text: str) -> list[int]:
    """Token ids of rendered template text, which already carries its special tokens."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_example(
    tokenizer: Any, prompt: str, answer: str, max_length: int = MAX_LENGTH
) -> tuple[list[int], int]:
    """(token ids of prompt + answer, number of answer tokens); the prompt is cut from the left."""
    head, tail = _render(tokenizer, prompt, answer)
    head_ids = _tokens(tokenizer, head)
    full_ids = _tokens(tokenizer, head + tail)
    if len(full_ids) > len(head_ids) and full_ids[: len(head_ids)] == head_ids:
        ids, n_answer = full_ids, len(full_ids) - len(head_ids)
    else:  # the tokens merge across the boundary: tokenize the two halves apart
        tail_ids = _tokens(tokenizer, tail)
        ids, n_answer = head_ids + tail_ids, len(tail_ids)
    keep_prompt = max(max_length - n_answer, 1)  # the first answer token needs some context
    n_prompt = len(ids) - n_answer
    return ids[max(n_prompt - keep_prompt, 0) :], n_answer


def length_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped by length so batches pad little: [5, 1, 3], 2 -> [[1, 2], [0]]."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _left_pad(seqs: list[list[int]], pad_id: int, device: Any) -> tuple[Any, Any, Any]:
    """(input_ids, attention_mask, position_ids) with padding on the left."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in seqs], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # each row starts at position 0
    return ids, mask, positions


def _batch_nll(model: Any, seqs: list[list[int]], n_answers: list[int], pad_id: int) -> list[float]:
    """Summed NLL of the last n_answers[i] tokens of each sequence (left padded, one forward)."""
    return [sum(t) for t in _batch_token_nll(model, seqs, n_answers, pad_id)]


def _batch_token_nll(
    model: Any, seqs: list[list[int]], n_answers: list[int], pad_id: int
) -> list[list[float]]:
    """NLL of each of the last n_answers[i] tokens of each sequence (left padded, one forward)."""
    import torch

    ids, mask, positions = _left_pad(seqs, pad_id, model.device)
    keep = max(n_answers) + 1  # logits at position t predict token t + 1
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep)
    logprobs = out.logits[:, :-1].float().log_softmax(-1)
    targets = ids[:, -(keep - 1) :]
    nll = -logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return [nll[i, -n:].tolist() if n else [] for i, n in enumerate(n_answers)]


def answer_losses(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    answers: list[str],
    batch_size: int = 8,
    with_prompt: bool = True,
) -> list[tuple[float, int]]:
    """Per example (summed NLL of the answer tokens, answer token count), in input order.

    with_prompt=False scores each answer after an empty user turn (for IFD).
    """
    if len(prompts) != len(answers):
        raise ValueError(f"answer_losses: {len(prompts)} prompts but {len(answers)} answers")
    encoded = [
        encode_example(tokenizer, p if with_prompt else "", a)
        for p, a in zip(prompts, answers, strict=True)
    ]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[tuple[float, int]] = [(0.0, 0)] * len(encoded)
    for batch in length_batches([len(ids) for ids, _ in encoded], batch_size):
        seqs, counts = [encoded[i][0] for i in batch], [encoded[i][1] for i in batch]
        for i, nll, n in zip(batch, _batch_nll(model, seqs, counts, pad_id), counts, strict=True):
            out[i] = (nll, n)
    return out


def end_of_turn_tokens(tokenizer: Any) -> int:
    """How many tokens the chat template puts after an assistant answer (SmolLM2's
    '<|im_end|>\n': 2)."""
    _, tail = _render(tokenizer, "q", "a")
    return len(_tokens(tokenizer, tail)) - len(_tokens(tokenizer, "a"))


def answer_token_losses(
    model: Any, tokenizer: Any, prompts: list[str], answers: list[str], batch_size: int = 8
) -> list[list[float]]:
    """Per example, the NLL of each of the answer's own tokens after its prompt (one user turn;
    the end-of-turn tokens left out), input order."""
    if len(prompts) != len(answers):
        raise ValueError(f"answer_token_losses: {len(prompts)} prompts but {len(answers)} answers")
    encoded = [encode_example(tokenizer, p, a) for p, a in zip(prompts, answers, strict=True)]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    end = max(end_of_turn_tokens(tokenizer), 0)
    out: list[list[float]] = [[] for _ in encoded]
    for batch in length_batches([len(ids) for ids, _ in encoded], batch_size):
        seqs, counts = [encoded[i][0] for i in batch], [encoded[i][1] for i in batch]
        for i, losses in zip(batch, _batch_token_nll(model, seqs, counts, pad_id), strict=True):
            out[i] = losses[: max(len(losses) - end, 1)]
    return out


def mean_answer_loss(pairs: list[tuple[float, int]]) -> float:
    """Token-weighted mean NLL: [(4.0, 2), (2.0, 2)] -> 1.5."""
    tokens = sum(n for _, n in pairs)
    if tokens == 0:
        raise ValueError("mean_answer_loss: no answer tokens")
    return sum(nll for nll, _ in pairs) / tokens


def ifd_scores(
    model: Any, tokenizer: Any, prompts: list[str], answers: list[str], batch_size: int = 8
) -> list[float]:
    """Instruction-Following Difficulty per example: mean loss with / without the instruction."""
    given = answer_losses(model, tokenizer, prompts, answers, batch_size, with_prompt=True)
    alone = answer_losses(model, tokenizer, prompts, answers, batch_size, with_prompt=False)
    return [(g / n) / (a / m) for (g, n), (a, m) in zip(given, alone, strict=True)]


def normalize_answer(text: str) -> str:
    """SQuAD normalisation, any Unicode punctuation included: 'The  “Insulin”!' -> 'insulin'."""
    text = "".join(
        ch for ch in text.lower() if ch not in PUNCTUATION and unicodedata.category(ch)[0] != "P"
    )
    return " ".join(ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-words F1 after normalize_answer; 1.0 when both normalize to nothing:
    ('the cat sat', 'cat sat down') -> 0.8."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _generate(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy replies to a batch of single-turn prompts."""
    import torch

    keep = max(MAX_LENGTH - max_new_tokens, 1)
    heads = [_tokens(tokenizer, _render(tokenizer, p, "")[0])[-keep:] for p in prompts]
    ids, mask, _ = _left_pad(heads, tokenizer.pad_token_id, model.device)
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    replies = tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
    return [reply.strip() for reply in replies]


def generation_score(
    model: Any, tokenizer: Any, qas: list[QA], max_new_tokens: int = 64, batch_size: int = 8
) -> dict[str, Any]:
    """Mean token F1 of greedy replies: {"token_f1", "n", "examples" (the first three)}."""
    predictions = [""] * len(qas)
    for batch in length_batches([len(qa.prompt) for qa in qas], batch_size):
        replies = _generate(model, tokenizer, [qas[i].prompt for i in batch], max_new_tokens)
        for i, reply in zip(batch, replies, strict=True):
            predictions[i] = reply
    scores = [token_f1(p, qa.answer) for p, qa in zip(predictions, qas, strict=True)]
    mean_f1 = sum(scores) / len(scores) if scores else 0.0
    examples = [
        {"id": qa.id, "prompt": qa.prompt, "answer": qa.answer, "prediction": p}
        for qa, p in zip(qas[:N_EXAMPLES], predictions[:N_EXAMPLES], strict=True)
    ]
    return {"token_f1": mean_f1, "n": len(qas), "examples": examples}


def evaluate(
    model_path: str,
    domain: list[QA],
    general: list[QA] | None,
    generate: int = 40,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    test: list[QA] | None = None,
) -> dict[str, Any]:
    """Answer losses on the domain dev set (`domain`), the test set and the general set, and
    token F1 on the first `generate` dev QAs; per-question losses under `per_question`.

    Loads the model once and frees it afterwards, so a trainer can follow in the same process.
    """
    start = time.perf_counter()
    sets = {"dev": domain, "test": test or [], "general": general or []}
    model, tokenizer = load_model(model_path)
    try:
        pairs = {name: _qa_losses(model, tokenizer, qas, batch_size) for name, qas in sets.items()}
        gen: dict[str, Any] = {}
        if generate > 0:
            gen = generation_score(model, tokenizer, domain[:generate], max_new_tokens, batch_size)
    finally:
        del model  # the only reference: the weights can go before a trainer loads its own
        release_memory()
    per_question = {
        name: {
            "ids": [qa.id for qa in sets[name]],
            "nll": [nll for nll, _ in pairs[name]],
            "tokens": [n for _, n in pairs[name]],
        }
        for name in sets
    }
    return {
        "model": model_path,
        "domain_loss": mean_answer_loss(pairs["dev"]),
        "domain_tokens": sum(n for _, n in pairs["dev"]),
        "domain_n": len(domain),
        "test_loss": mean_answer_loss(pairs["test"]) if pairs["test"] else None,
        "test_n": len(sets["test"]),
        "domain_token_f1": gen.get("token_f1"),
        "general_loss": mean_answer_loss(pairs["general"]) if pairs["general"] else None,
        "general_n": len(pairs["general"]),
        "seconds": round(time.perf_counter() - start, 1),
        "examples": gen.get("examples", []),
        "per_question": per_question,
    }


def _qa_losses(
    model: Any, tokenizer: Any, qas: list[QA], batch_size: int
) -> list[tuple[float, int]]:
    prompts, answers = [qa.prompt for qa in qas], [qa.answer for qa in qas]
    return answer_losses(model, tokenizer, prompts, answers, batch_size)


def release_memory() -> None:
    """Give back what a deleted model held (host memory, and the GPU cache on CUDA)."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

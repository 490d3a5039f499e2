"""Both real backends on the default model: same prompts, same protocol, sensible answers."""

import json

import pytest

from generators.backends.vllm import get_engine, to_vllm_params
from generators.llm import Sampling

pytestmark = pytest.mark.slow

PROMPTS = [
    "What is the capital of France?",
    "What organ pumps blood through the body?",
    "Name the gas that humans need to breathe to survive.",
    "What is the chemical symbol for water?",
    "Write one sentence about the sun.",
    "List two fruits.",
    "What color is the sky on a clear day?",
    "Translate 'hello' into Spanish.",
]
# What SmolLM2-135M answers reliably (it is a 135M model: the organ and gas prompts it gets wrong).
KEYWORDS = {0: "paris", 3: "h2o", 5: "banana", 6: "blue", 7: "hola"}
GREEDY = Sampling(max_tokens=32, temperature=0.0)


def conversations(prompts=PROMPTS):
    return [[{"role": "user", "content": p}] for p in prompts]


@pytest.fixture(params=["vllm", "transformers"])
def llm(request):
    return request.getfixturevalue(f"{'vllm' if request.param == 'vllm' else 'hf'}_llm")


def test_both_backends_answer_the_same_batch(vllm_llm, hf_llm):
    answers = {}
    for name, llm in (("vllm", vllm_llm), ("transformers", hf_llm)):
        out = llm.chat(conversations(), GREEDY)
        assert len(out) == len(PROMPTS) and all(len(c) == 1 and c[0].strip() for c in out)
        answers[name] = [c[0].lower() for c in out]
        for i, word in KEYWORDS.items():
            assert word in answers[name][i], (name, PROMPTS[i], answers[name][i])
    assert vllm_llm.model_id == hf_llm.model_id
    # Greedy decoding of the same weights (bf16 in vLLM, fp32 in transformers) starts the same way.
    same_start = sum(
        v.split()[:5] == t.split()[:5]
        for v, t in zip(answers["vllm"], answers["transformers"], strict=True)
    )
    assert same_start >= 6, answers


def test_n_samples_and_seed(llm):
    sampling = Sampling(max_tokens=12, temperature=1.0, n=3, seed=7)
    first = llm.chat(conversations(PROMPTS[:2]), sampling)
    assert [len(c) for c in first] == [3, 3]
    assert llm.chat(conversations(PROMPTS[:2]), sampling) == first  # seeded = reproducible


def test_seeded_batch_larger_than_one_prefill_step(vllm_llm):
    """Prompts summing past vLLM's per-step token budget (4096) with per-request seeds."""
    long_prompt = "Summarize: " + "The nephron filters blood and reabsorbs salts. " * 40
    chats = conversations([f"{i}. {long_prompt}" for i in range(12)])  # ~4,800 prompt tokens
    out = vllm_llm.chat(chats, Sampling(max_tokens=4, temperature=0.8, seed=1))
    assert len(out) == 12 and all(c[0] for c in out)


def test_prompts_are_rendered_as_llm_chat_renders_them(vllm_llm):
    """The backend tokenizes conversations itself (to admit them within the KV cache): the ids
    must be the ones `LLM.chat` would send, system message and special tokens included."""
    from vllm import SamplingParams

    chats = conversations(PROMPTS[:3])
    chats[1] = [{"role": "system", "content": "Answer briefly."}] + chats[1]
    ref = vllm_llm.engine.chat(chats, SamplingParams(max_tokens=1), use_tqdm=False)
    assert [vllm_llm.prompt_ids(c) for c in chats] == [list(r.prompt_token_ids) for r in ref]


def test_a_batch_past_the_kv_budget_is_admitted_in_turn(vllm_llm):
    """With room for about two requests at a time, the batch still comes back whole, in order,
    with the answers the engine gives when everything fits."""
    whole = vllm_llm.chat(conversations(), GREEDY)
    vllm_llm.kv_budget = 2 * 256
    try:
        staged = vllm_llm.chat(conversations(), GREEDY)
    finally:
        vllm_llm.kv_budget = None
    assert staged == whole
    assert vllm_llm.engine.llm_engine.get_num_unfinished_requests() == 0


def test_stop_strings_cut_the_output(llm):
    out = llm.chat(
        conversations(["Count from one to ten in words, separated by commas."]),
        Sampling(max_tokens=40, stop=(",",)),
    )
    assert "," not in out[0][0] and out[0][0].strip()


def test_usage_counts_tokens(llm):
    before = dict(llm.usage)
    llm.chat(conversations(PROMPTS[:2]), Sampling(max_tokens=8))
    assert llm.usage["conversations"] == before["conversations"] + 2
    assert 2 <= llm.usage["output_tokens"] - before["output_tokens"] <= 16


def test_vllm_json_schema_is_enforced(vllm_llm):
    schema = {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "reason": {"type": "string", "maxLength": 60},
        },
        "required": ["score", "reason"],
    }
    out = vllm_llm.chat(
        conversations(["Rate the answer 'Paris' to 'capital of France?' from 1 to 5 as JSON."]),
        Sampling(max_tokens=60, json_schema=schema),
    )
    verdict = json.loads(out[0][0])
    assert 1 <= verdict["score"] <= 5 and isinstance(verdict["reason"], str)


def test_a_prompt_past_the_context_is_an_empty_reply_listed_as_failed(vllm_llm):
    too_long = [{"role": "user", "content": "cell " * 5000}]
    replies = vllm_llm.chat([too_long, *conversations(PROMPTS[:1])], GREEDY)
    assert replies[0] == [""] and "paris" in replies[1][0].lower()
    assert [f["index"] for f in vllm_llm.last_failures] == [0]
    assert "does not fit the model's context of" in vllm_llm.last_failures[0]["error"]
    vllm_llm.chat(conversations(PROMPTS[:1]), GREEDY)
    assert vllm_llm.last_failures == []


def test_one_engine_per_process(vllm_llm, default_model):
    assert get_engine(default_model.path) is vllm_llm.engine


def test_sampling_maps_onto_each_engine(hf_llm):
    sampling = Sampling(max_tokens=9, temperature=0.5, top_p=0.9, repetition_penalty=1.2, seed=10)
    params = to_vllm_params(sampling, 3)
    assert (params.max_tokens, params.temperature, params.top_p) == (9, 0.5, 0.9)
    assert params.repetition_penalty == 1.2 and params.seed == 13
    kwargs = hf_llm._generate_kwargs(sampling)
    assert kwargs["max_new_tokens"] == 9 and kwargs["repetition_penalty"] == 1.2
    assert kwargs["do_sample"] and kwargs["temperature"] == 0.5 and kwargs["top_p"] == 0.9

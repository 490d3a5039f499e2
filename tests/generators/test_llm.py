import pytest

from generators.backends.fake import FakeLLM
from generators.errors import SelfAlignError
from generators.llm import LLM, Sampling, encodable, load_backend, truncate_at_stop


def test_truncate_at_stop_cuts_at_earliest():
    assert truncate_at_stop("a. b\nc", (".", "\n")) == "a"
    assert truncate_at_stop("abc", ()) == "abc"
    assert truncate_at_stop("abc", ("z",)) == "abc"


def test_encodable_replaces_lone_surrogates_only():
    assert encodable("ATP \ud800 and \udfff.") == "ATP \ufffd and \ufffd."
    assert encodable("caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"
    assert encodable("a\ud83d").encode("utf-8") == "a\ufffd".encode()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_tokens": 0}, "max_tokens must be >= 1"),
        ({"n": 0}, "n must be >= 1"),
        ({"temperature": -1}, "temperature must be >= 0"),
        ({"top_p": 0}, "top_p must be in (0, 1]"),
        ({"repetition_penalty": 0}, "repetition_penalty must be > 0"),
    ],
)
def test_sampling_rejects_bad_values(kwargs, message):
    with pytest.raises(
        SelfAlignError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        Sampling(**kwargs)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(
        SelfAlignError, match="unknown backend 'llamacpp': choose one of auto, vllm, transformers"
    ):
        load_backend("llamacpp")


def test_fake_llm_follows_the_protocol():
    llm = FakeLLM(lambda conv: conv[-1]["content"].upper())
    out = llm.chat(
        [[{"role": "user", "content": "hi"}], [{"role": "user", "content": "yo"}]], Sampling(n=2)
    )
    assert isinstance(llm, LLM)
    assert out == [["HI", "HI"], ["YO", "YO"]]
    assert llm.usage["conversations"] == 2 and len(llm.calls) == 1


def test_cpu_engine_env_gives_small_machines_no_scheduler_core():
    from generators.backends.vllm import cpu_engine_env

    assert cpu_engine_env(2) == {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    assert cpu_engine_env(16) == {"VLLM_CPU_KVCACHE_SPACE": "2"}

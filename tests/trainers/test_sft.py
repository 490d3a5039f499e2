"""LoRA SFT and DPO: config mapping without a model; a few real steps on the default model."""

from __future__ import annotations

import json

import pytest

from trainers.data import DataError, load_messages, load_preferences, load_qa
from trainers.outputs import TRAINED_MARKER
from trainers.sft import (
    LORA_DEFAULTS,
    check_configs,
    lora_config,
    prompt_completion,
    trainer_args,
)

USER = {"role": "user", "content": "What do mitochondria make?"}
ANSWER = {"role": "assistant", "content": "ATP, through oxidative phosphorylation."}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_prompt_completion_puts_the_last_assistant_turn_in_the_completion():
    assert prompt_completion([USER, ANSWER]) == {"prompt": [USER], "completion": [ANSWER]}


def test_prompt_completion_refuses_a_row_without_an_answer():
    with pytest.raises(DataError, match="must end with an assistant message"):
        prompt_completion([USER])


def test_unknown_trl_and_peft_fields_are_named():
    with pytest.raises(DataError, match=r"train\.sft: unknown SFTConfig field 'lerning_rate'"):
        check_configs({}, {"lerning_rate": 1e-4}, None)
    with pytest.raises(DataError, match=r"train\.lora: unknown LoraConfig field 'rank'"):
        check_configs({"rank": 4}, {}, None)
    with pytest.raises(DataError, match=r"train\.dpo: unknown DPOConfig field 'betta'"):
        check_configs({}, {}, {"betta": 0.2})
    check_configs({"r": 4}, {"max_steps": 2}, {"beta": 0.2})  # known fields pass


def test_recipe_fields_override_defaults_and_cpu_trains_in_fp32(tmp_path):
    from trl import SFTConfig

    from trainers.sft import SFT_DEFAULTS

    args = trainer_args(SFTConfig, SFT_DEFAULTS, {"learning_rate": 1e-3}, "sft", tmp_path)
    assert args.learning_rate == 1e-3
    assert args.num_train_epochs == SFT_DEFAULTS["num_train_epochs"]
    assert args.use_cpu is True and not args.bf16
    lora = lora_config({"r": 4})
    assert lora.r == 4 and lora.lora_alpha == LORA_DEFAULTS["lora_alpha"]


def test_bad_training_files_name_the_line(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text(json.dumps({"messages": [USER, ANSWER]}) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.jsonl:2: not valid JSON"):
        load_messages(bad)
    write_jsonl(bad, [{"messages": [{"role": "user"}]}])
    with pytest.raises(DataError, match=r"train\.jsonl:1: 'messages' holds a message without"):
        load_messages(bad)
    dpo = write_jsonl(tmp_path / "dpo.jsonl", [{"prompt": [USER], "chosen": [ANSWER]}])
    with pytest.raises(DataError, match=r"dpo\.jsonl:1: 'rejected' must be a non-empty list"):
        load_preferences(dpo)
    qa = write_jsonl(tmp_path / "qa.jsonl", [{"question": "Why?", "answer": " "}])
    with pytest.raises(DataError, match=r"qa\.jsonl:1: empty answer"):
        load_qa(qa)


def test_qa_sets_in_both_formats(tmp_path):
    rows = [
        {"id": "q1", "question": "What is ATP?", "answer": "An energy carrier."},
        {
            "id": "t1",
            "instruction": "Fix the grammar.",
            "instances": [{"input": "He go.", "output": "He goes."}],
        },
    ]
    qas = load_qa(write_jsonl(tmp_path / "qa.jsonl", rows))
    assert [(q.id, q.prompt, q.answer) for q in qas] == [
        ("q1", "What is ATP?", "An energy carrier."),
        ("t1", "Fix the grammar.\n\nHe go.", "He goes."),
    ]
    assert len(load_qa(tmp_path / "qa.jsonl", limit=1)) == 1


# Four short facts repeated: a few steps at a high learning rate must lower the loss on them.
FACTS = [
    ("What do mitochondria make?", "ATP."),
    ("Which organelle holds chromosomes?", "The nucleus."),
    ("What carries oxygen in blood?", "Hemoglobin."),
    ("Where does translation happen?", "At ribosomes."),
]


@pytest.fixture(scope="module")
def sft_run(default_model, tmp_path_factory):
    import torch

    from trainers.sft import train_sft

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sft")
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in FACTS
    ]
    data = write_jsonl(folder / "train.jsonl", rows)
    sft = {"max_steps": 6, "learning_rate": 2e-3, "logging_steps": 1, "max_length": 64}
    return train_sft(default_model.path, data, folder / "out", sft=sft, lora={"r": 4})


@pytest.mark.slow
def test_lora_sft_lowers_the_loss_and_changes_weights(sft_run, default_model):
    from safetensors.torch import load_file

    assert sft_run.steps == 6 and len(sft_run.losses) == 6
    assert sft_run.last_loss < sft_run.first_loss * 0.8, sft_run.losses
    adapter = load_file(f"{sft_run.adapter}/adapter_model.safetensors")
    lora_b = [t for name, t in adapter.items() if "lora_B" in name]
    assert lora_b and any(t.abs().max() > 0 for t in lora_b)  # peft starts every lora_B at 0
    merged = load_file(f"{sft_run.merged}/model.safetensors")
    base = load_file(f"{default_model.path}/model.safetensors")
    name = next(k for k in base if k.endswith("self_attn.q_proj.weight"))
    assert merged[name].dtype == base[name].dtype
    assert not merged[name].equal(base[name])


@pytest.mark.slow
def test_merged_folder_is_a_model_with_its_own_id(sft_run, default_model):
    from generators.models import resolve_model

    marker = json.loads(open(f"{sft_run.merged}/{TRAINED_MARKER}").read())
    assert marker["base"] == default_model.path and len(marker["sha256"]) == 64
    ref = resolve_model(sft_run.merged)
    assert ref.model_id.startswith("merged@") and ref.model_id != default_model.model_id


@pytest.mark.slow
def test_dpo_runs_on_preference_pairs(sft_run, tmp_path):
    from trainers.sft import train_dpo

    rows = [
        {
            "prompt": [{"role": "user", "content": q}],
            "chosen": [{"role": "assistant", "content": a}],
            "rejected": [{"role": "assistant", "content": "I do not know."}],
        }
        for q, a in FACTS
    ]
    data = write_jsonl(tmp_path / "dpo.jsonl", rows)
    dpo = {"max_steps": 2, "logging_steps": 1, "max_length": 64, "learning_rate": 1e-4}
    result = train_dpo(sft_run.merged, data, tmp_path / "out", dpo=dpo, lora={"r": 4})
    assert result.steps == 2 and result.examples == 4
    assert all(loss == loss for loss in result.losses)  # finite, not NaN
    assert (tmp_path / "out" / "merged" / "config.json").is_file()


@pytest.mark.slow
def test_the_next_round_can_generate_with_the_merged_model(sft_run, vllm_llm):
    from generators.llm import Sampling, load_backend

    llm = load_backend("vllm", sft_run.merged)
    assert llm.model_id.startswith("merged@") and llm.model_id != vllm_llm.model_id
    [[reply]] = llm.chat([[{"role": "user", "content": FACTS[0][0]}]], Sampling(max_tokens=8))
    assert reply.strip()

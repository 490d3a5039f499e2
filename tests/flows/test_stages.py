"""The pure glue between prompts, replies and records (no model)."""

from flows.counts import reason_kind, stage_counts
from flows.recipe import GenerateConfig
from flows.stages.origins import self_instruct_steps as stages
from generators.corpus import Passage
from generators.records import Record
from generators.seeds import Seed

SEEDS = [Seed(id=f"s{i}", instruction=f"Seed task number {i}.", instances=()) for i in range(8)]
PASSAGES = [Passage(id=f"p{i}", text=f"Passage text {i}.", doc_id=f"p{i}") for i in range(5)]


def test_derive_seed_is_stable_and_distinct():
    assert stages.derive_seed(0, "gen", 1) == stages.derive_seed(0, "gen", 1)
    assert stages.derive_seed(0, "gen", 1) != stages.derive_seed(0, "gen", 2)
    assert 0 <= stages.derive_seed(7, "x") < 2**31


def test_generation_prompt_samples_demos_and_passages_deterministically():
    cfg = GenerateConfig(demos_seed=3, demos_machine=2, passages_per_prompt=2)
    pool = [Record(instruction="Machine task one."), Record(instruction="Machine task two.")]
    a = stages.generation_prompt(4, cfg, 0, SEEDS, pool, PASSAGES)
    b = stages.generation_prompt(4, cfg, 0, SEEDS, pool, PASSAGES)
    assert a == b
    assert len(a.seed_ids) == 3 and len(a.machine_ids) == 2 and a.first_number == 6
    assert len(a.passage_ids) == 2 and all(
        p in a.conversation[-1]["content"] for p in a.passage_ids
    )
    first = stages.generation_prompt(0, cfg, 0, SEEDS, [], PASSAGES)
    assert first.machine_ids == () and first.first_number == 4


def test_replies_become_records_with_lineage():
    cfg = GenerateConfig(demos_seed=2, demos_machine=0, passages_per_prompt=1)
    prompts = [stages.generation_prompt(i, cfg, 0, SEEDS, [], PASSAGES) for i in range(2)]
    replies = [
        ["3. Explain how insulin lowers glucose.\n4. List two causes of anemia"],
        ["no list here"],
    ]
    kept, dropped = stages.instructions_from_replies(
        prompts, replies, {"model_id": "m", "round": 0}
    )
    assert [(r.instruction, r.meta["truncated"]) for r in kept] == [
        ("Explain how insulin lowers glucose.", False),
        ("List two causes of anemia", True),
    ]
    assert kept[0].meta["generation_passages"] == list(prompts[0].passage_ids)
    assert kept[0].meta["model_id"] == "m" and kept[0].meta["prompt_index"] == 0
    assert [(d.meta["drop_reason"], d.meta["reply"]) for d in dropped] == [
        ("reply_unparseable", "no list here")
    ]


def test_classification_instances_and_responses():
    records = [Record(instruction="Is aspirin an NSAID?"), Record(instruction="Explain sepsis.")]
    records = stages.apply_classification(records, [["Yes."], ["maybe"]])
    assert [(r.meta["is_classification"], r.meta["classify_reply_clear"]) for r in records] == [
        (True, True),
        (False, False),
    ]
    records = stages.attach_passages(records, [[("p1", 0.812345)], [("p2", 0.5), ("p3", 0.4)]])
    assert records[1].passages == ("p2", "p3") and records[0].meta["passage_scores"] == [0.8123]
    kept, dropped = stages.apply_instances(
        records, [["Input: aspirin\nOutput: Yes"], ["nothing useful"]]
    )
    assert [(r.input, r.meta["instance_output"]) for r in kept] == [("aspirin", "Yes")]
    assert kept[0].meta["instruction_id"] == records[0].id and kept[0].id != records[0].id
    assert dropped[0].meta["drop_reason"] == "instance_unparseable"
    answered, empty = stages.apply_responses(kept + kept, [["  Yes, it is.  "], ["   "]])
    assert answered[0].output == "Yes, it is." and empty[0].meta["drop_reason"] == "response_empty"


def test_reason_kind_and_counts():
    assert reason_kind("rouge_l_0.82_vs_ab12") == "rouge_l"
    assert reason_kind("duplicate_of_x#1") == "duplicate"
    assert reason_kind("blocked_word_image") == "blocked_word_image"
    assert reason_kind("embedding_duplicate_of_ab") == "embedding_duplicate"
    assert reason_kind("judge_score_2_lt_4") == "judge_score_lt_4"
    assert reason_kind("judge_score_out_of_range") == "judge_score_out_of_range"
    assert reason_kind("instance_unparseable") == "instance_unparseable"
    assert reason_kind("contaminated_qa-001") == "contaminated"
    assert reason_kind("contaminated_user_oriented_task_12") == "contaminated"
    dropped = [Record(instruction=str(i)).drop("s", f"rouge_l_0.9{i}_vs_k") for i in range(3)]
    assert stage_counts("novelty", 5, [Record(instruction="a")], dropped) == {
        "stage": "novelty",
        "in": 5,
        "kept": 1,
        "dropped": 3,
        "reasons": {"rouge_l": 3},
        "origins": {"self_instruct": {"kept": 1, "dropped": 3}},
        "seconds": 0.0,
    }


def test_source_passage_first_then_retrieved_ones_above_the_score():
    task = Record(instruction="Explain ATP.", meta={"generation_passages": ["p2"]})
    hits = [[("p2", 0.9), ("p7", 0.6), ("p9", 0.4)]]
    (r,) = stages.attach_source_passages([task], hits, min_score=0.5)
    assert r.passages == ("p2", "p7")
    assert r.meta["source_passage"] == "p2" and r.meta["passage_scores"] == [0.6]
    (none,) = stages.attach_source_passages([Record(instruction="x")], [[("p1", 0.2)]], 0.5)
    assert none.passages == () and none.meta["source_passage"] is None


def test_response_prompt_asks_for_the_passage_facts_when_answering_from_it():
    from generators import respond

    r = Record(instruction="Explain ATP.", passages=("p1",))
    (default,) = stages.response_prompts([r], {"p1": "ATP is energy."})
    (strict,) = stages.response_prompts([r], {"p1": "ATP is energy."}, from_passage=True)
    assert default[0]["content"] == respond.SYSTEM_PROMPT
    assert strict[0]["content"] == respond.FROM_PASSAGE_PROMPT
    assert default[1] == strict[1]
    assert respond.response_problem(f"Sure. {respond.FROM_PASSAGE_PROMPT}") == (
        "response_echoes_system_prompt"
    )


def test_stage_counts_split_by_origin():
    kept = [Record(instruction="a", meta={"origin": "reading"}), Record(instruction="b")]
    dropped = [Record(instruction="c", meta={"origin": "reading"}).drop("grounding", "unsupported")]
    counts = stage_counts("grounding", 3, kept, dropped)
    assert counts["origins"] == {
        "reading": {"kept": 1, "dropped": 1},
        "self_instruct": {"kept": 1},
    }

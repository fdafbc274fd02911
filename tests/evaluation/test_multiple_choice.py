"""llmlab.evaluation.multiple_choice: prompts as lm-eval writes them, scorers as it defines them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from llmlab.evaluation.multiple_choice import (
    MC_INSTRUCTION,
    MCItem,
    MCResult,
    chance,
    cloze_prompt,
    cloze_requests,
    few_shot_prefix,
    letter_prompt,
    letter_requests,
    parse_letter,
    permute,
    score_acc,
    score_acc_norm,
    score_generate,
    score_letter,
)

ITEM = MCItem(question="What is 2+2?", choices=("3", "4", "twenty-two"), answer=1, id="q1")


# lm-evaluation-harness, lm_eval/api/task.py (ConfigurableTask.process_results, multiple_choice):
# the reference definitions of acc and acc_norm, copied as they are written.
def harness_acc(lls, choices, gold):
    completion_len = np.array([float(len(i)) for i in choices])
    pred = np.argmax(lls)
    pred_norm = np.argmax(lls / completion_len)
    return 1.0 if pred == gold else 0.0, 1.0 if pred_norm == gold else 0.0


def test_items_check_their_answer():
    with pytest.raises(ValueError, match="not an index"):
        MCItem(question="q", choices=("a", "b"), answer=2)
    with pytest.raises(ValueError, match="at least 2"):
        MCItem(question="q", choices=("a",), answer=0)


def test_prompts_are_the_harness_templates():
    # ARC's doc_to_text, and each option after the target delimiter " "
    assert cloze_prompt(ITEM) == "Question: What is 2+2?\nAnswer:"
    assert cloze_requests([ITEM])[0] == (cloze_prompt(ITEM), [" 3", " 4", " twenty-two"])
    # MMLU's doc_to_text ("{{question.strip()}}\nA. {{choices[0]}}\n...\nAnswer:"), letters as choices
    assert letter_prompt(ITEM) == "What is 2+2?\nA. 3\nB. 4\nC. twenty-two\nAnswer:"
    context, letters = letter_requests([ITEM])[0]
    assert context == MC_INSTRUCTION + letter_prompt(ITEM) and letters == [" A", " B", " C"]
    # few-shot: solved examples, each followed by a blank line, then the question
    shots = few_shot_prefix([ITEM], "cloze")
    assert shots == "Question: What is 2+2?\nAnswer: 4\n\n"
    assert few_shot_prefix([ITEM], "letter", MC_INSTRUCTION).endswith("Answer: B\n\n")


@pytest.mark.parametrize(
    "lls",
    [[-4.0, -6.0, -20.0], [-9.0, -2.5, -3.0], [-1.0, -7.0, -9.0], [-5.0, -5.0, -5.0]],
)
def test_acc_and_acc_norm_are_the_harness_definitions(lls):
    want_acc, want_norm = harness_acc(np.array(lls), ITEM.choices, ITEM.answer)
    assert score_acc([ITEM], [lls]).correct == [want_acc]
    assert score_acc_norm([ITEM], [lls]).correct == [want_norm]


def test_acc_norm_divides_by_characters_not_tokens():
    # "twenty-two" has 10 characters: -20 / 10 = -2 beats "4" at -6 / 1
    lls = [[-4.0, -6.0, -20.0]]
    assert score_acc([ITEM], lls).predictions == [0]
    assert score_acc_norm([ITEM], lls).predictions == [2]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (" B", 1),
        ("B. 4", 1),
        ("(C) twenty-two", 2),
        ("\n  A", 0),
        ("The answer is B", -1),
        ("", -1),
        (" D", -1),
        ("Bob", -1),
        (" b", -1),
    ],
)
def test_parse_letter(text, want):
    assert parse_letter(text, "ABC") == want


def test_score_generate_counts_unreadable_answers_wrong():
    items = [ITEM, ITEM, ITEM]
    result = score_generate(items, [" B", "", " The answer is B"])
    assert result.correct == [1.0, 0.0, 0.0] and result.predictions == [1, -1, -1]
    with pytest.raises(ValueError, match="3 items"):
        score_generate(items, [" B"])


def test_letter_scores_pick_the_most_likely_letter():
    assert score_letter([ITEM], [[-3.0, -1.0, -2.0]]).correct == [1.0]


def test_permute_moves_the_answer_with_its_option():
    moved = permute(ITEM, [2, 0, 1])
    assert moved.choices == ("twenty-two", "3", "4") and moved.choices[moved.answer] == "4"
    with pytest.raises(ValueError, match="permutation"):
        permute(ITEM, [0, 0, 1])


def test_result_accuracy_and_intervals():
    r = MCResult(name="x", correct=[1.0] * 7 + [0.0] * 13, predictions=[0] * 20)
    assert r.accuracy == pytest.approx(0.35)
    ci = binomtest(7, 20).proportion_ci(method="wilson")  # scipy's Wilson interval
    assert r.ci() == pytest.approx((ci.low, ci.high))
    shared = MCResult(name="ties", correct=[0.5, 1.0, 0.0, 0.25], predictions=[0] * 4)
    low, high = shared.ci()  # not 0/1: a bootstrap interval around the mean
    assert low <= shared.accuracy <= high
    assert "35.0%" in str(r)


def test_chance_is_one_over_the_number_of_options():
    two = MCItem(question="q", choices=("a", "b"), answer=0)
    assert chance([ITEM, two]) == pytest.approx((1 / 3 + 1 / 2) / 2)

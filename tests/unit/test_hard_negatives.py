"""Hard unanswerable questions: each edit on its own paragraph, and the no-answer weight of the hard loss."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from paretodistill.data.hard_negatives import (
    HARD_ID_SUFFIX,
    KINDS,
    hard_unanswerables,
    negate,
    swap_antonym,
    swap_name,
    swap_number,
    with_hard_unanswerables,
)
from paretodistill.data.squad import Answer, Example, SquadData, load_squad
from paretodistill.distill.losses import hard_loss
from paretodistill.errors import ConfigError

SQUAD1_EXTRA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "squad1" / "dev-v1.1-extra13.explorer-rebuilt.json.gz"


def example(question: str, context: str, title: str = "Rivers") -> Example:
    return Example(id="q", title=title, context=context, question=question, answers=(Answer("x", 0),), is_impossible=False)


def test_a_number_the_paragraph_holds_becomes_one_it_does_not():
    context = "The bridge over the Rhine opened in 1854 and carried 3 tracks."
    for seed in range(20):
        edited = swap_number("What opened in 1854?", context, random.Random(seed))
        year = int(edited.removeprefix("What opened in ").removesuffix("?"))
        assert year != 1854 and abs(year - 1854) <= 30 and str(year) not in context
    assert swap_number("What opened in 1910?", context, random.Random(0)) is None  # the paragraph does not hold 1910


def test_a_name_is_swapped_for_another_articles_name_of_the_same_width():
    names = {2: [("Rivers", "Lake Geneva"), ("Cities", "New York"), ("Cities", "Rhine Valley")], 1: [("Cities", "Paris")]}
    question = example("Which river flows through Lake Geneva?", "The Rhone flows through Lake Geneva into France.")
    for seed in range(20):
        # never "Lake Geneva" (the question's own article) nor "Paris" (one word for a two-word name)
        edited = swap_name(question, names, random.Random(seed))
        assert edited in ("Which river flows through New York?", "Which river flows through Rhine Valley?")
    # the question's first word is never taken for a name, and a name the paragraph lacks is left alone
    assert swap_name(example("Geneva is where?", "Lake Geneva lies in the Alps."), names, random.Random(0)) is None


def test_negation_goes_after_the_wh_words_auxiliary_and_never_twice():
    assert negate("What was the name of the first bridge?") == "What was not the name of the first bridge?"
    assert negate("How many bridges were built?") == "How many bridges were not built?"
    assert negate("What has changed since?") == "What has not changed since?"
    assert negate("How many people did the plague kill?") is None  # do-support: "not" belongs after the subject
    assert negate("Which player had the most interceptions?") is None  # "had" as the main verb
    assert negate("Who did not sign the treaty?") is None
    assert negate("Name the river.") is None


def test_an_antonym_is_used_only_when_the_paragraph_never_says_it():
    assert swap_antonym("What is the largest city?", "Zurich is the largest city.") == "What is the smallest city?"
    assert swap_antonym("First, who came?", "Nobody came.") == "Last, who came?"
    assert swap_antonym("What is the largest city?", "Zurich is largest, Chur the smallest.") is None


def test_the_edited_questions_keep_their_paragraph_and_lose_their_answers():
    data = load_squad(str(SQUAD1_EXTRA))
    made, kinds = hard_unanswerables(data, 0.3, seed=13)
    answerable = sum(not e.is_impossible for e in data.examples)
    assert 0.6 * round(0.3 * answerable) <= len(made) <= round(0.3 * answerable)
    assert set(kinds) == set(KINDS) and sum(kinds.values()) == len(made)  # every kind applies somewhere
    originals = {e.id: e for e in data.examples}
    for edited in made:
        original = originals[edited.id.removesuffix(HARD_ID_SUFFIX)]
        assert edited.is_impossible and edited.answers == ()
        assert edited.context == original.context and edited.question != original.question
    again, _ = hard_unanswerables(data, 0.3, seed=13)
    assert [e.question for e in again] == [e.question for e in made]  # seeded
    combined, _ = with_hard_unanswerables(data, 0.3, seed=13)
    assert len(combined.examples) == len(data.examples) + len(made) and combined.fingerprint != data.fingerprint


def test_a_fraction_outside_zero_to_one_is_refused():
    empty = SquadData(examples=(), articles=(), version="1.1", source="-", fingerprint="-")
    with pytest.raises(ConfigError, match="hard_unanswerable_fraction"):
        hard_unanswerables(empty, 1.5, seed=0)


def test_the_no_answer_weight_weighs_the_cls_windows_apart():
    torch.manual_seed(0)
    start, end = torch.randn(4, 6), torch.randn(4, 6)
    mask = torch.ones(4, 6, dtype=torch.long)
    positions = torch.tensor([0, 0, 2, 3])  # two "no answer" windows, two spans
    per_window = [hard_loss(start[i:i + 1], end[i:i + 1], positions[i:i + 1], positions[i:i + 1], mask[i:i + 1])
                  for i in range(4)]
    assert hard_loss(start, end, positions, positions, mask).item() == pytest.approx(sum(per_window).item() / 4, rel=1e-6)
    weighted = hard_loss(start, end, positions, positions, mask, no_answer_weight=3.0)
    expected = (3 * per_window[0] + 3 * per_window[1] + per_window[2] + per_window[3]) / 8
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-6)

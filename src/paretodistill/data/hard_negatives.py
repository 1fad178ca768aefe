"""Hard unanswerable questions: an answerable question edited so its own paragraph no longer answers it.

SQuAD 2.0's unanswerable questions were written against their own paragraph, with a plausible
answer in it (Rajpurkar et al., 2018, Table 2: negation, antonym, entity swap, mutual exclusion,
impossible condition). A question asked of another paragraph (``synthetic.py``) teaches only
"this paragraph is off topic"; these teach "the paragraph is on topic and still does not say".
One seeded edit per chosen question, of the kinds the paper names that a rule can make:

- ``number``: a number the paragraph holds (a year, a count) becomes one it does not hold;
- ``entity``: a capitalised name the paragraph holds becomes a name from another article;
- ``negation``: "What was ..." becomes "What was not ...";
- ``antonym``: "largest" becomes "smallest", when the paragraph never says the opposite word.

A rule can be wrong (a negated question the paragraph still answers): the count of each kind is
recorded with the data summary, so a teacher's figures can be traced to the mix that made them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable

from paretodistill.data.squad import Example, SquadData
from paretodistill.errors import ConfigError

HARD_ID_SUFFIX = "-hard-unanswerable"
KINDS = ("number", "entity", "negation", "antonym")

NUMBER = re.compile(r"\b\d{1,4}\b")
NAME = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*\b")  # a run of capitalised words
# "What was used" -> "What was not used". Do-support ("Who did Webb recruit") puts the subject after the verb,
# where "not" would need the subject's end: those questions are left alone, as is "had" as a main verb.
WH_AUXILIARY = re.compile(
    r"^(?:what|who|whom|which|when|where|why|how(?: many| much| long| often)?)(?: \w+)?? "
    r"(is|are|was|were|can|could|will|would|should|might|must|(?:has|have|had)(?= been\b| \w+(?:ed|en)\b))\b",
    re.IGNORECASE,
)
# calendar words are capitalised but name nothing a paragraph is about
NOT_NAMES = frozenset("January February March April May June July August September October November December "
                      "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split())
_PAIRS = [
    ("first", "last"), ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"),
    ("most", "least"), ("before", "after"), ("earliest", "latest"), ("oldest", "newest"),
    ("longest", "shortest"), ("increase", "decrease"), ("increased", "decreased"), ("north", "south"),
    ("east", "west"), ("best", "worst"), ("early", "late"), ("minimum", "maximum"), ("lower", "upper"),
    ("inside", "outside"), ("win", "lose"), ("won", "lost"), ("more", "less"), ("major", "minor"),
]
ANTONYMS = {**dict(_PAIRS), **{b: a for a, b in _PAIRS}}


def hard_unanswerables(data: SquadData, fraction: float, seed: int) -> tuple[list[Example], Counter]:
    """About ``fraction`` x (answerable questions) edited questions on their own paragraph, and the count per kind.

    Each chosen question tries the kinds in a seeded order and keeps the first edit that applies;
    one that no kind applies to is skipped, so the count can come out lower than asked.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"hard_unanswerable_fraction must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return [], Counter()
    rng = random.Random(seed)
    names = _names_by_width(data)
    answerable = [e for e in data.examples if not e.is_impossible]
    made, kinds = [], Counter()
    for example in rng.sample(answerable, round(fraction * len(answerable))):
        edit = _first_edit(example, names, rng)
        if edit is None:
            continue
        kind, question = edit
        kinds[kind] += 1
        made.append(dataclasses.replace(example, id=example.id + HARD_ID_SUFFIX, question=question,
                                        answers=(), is_impossible=True))
    return made, kinds


def with_hard_unanswerables(data: SquadData, fraction: float, seed: int) -> tuple[SquadData, Counter]:
    """``data`` plus its hard unanswerable examples (training use), and the count per kind."""
    extra, kinds = hard_unanswerables(data, fraction, seed)
    if not extra:
        return data, kinds
    fingerprint = hashlib.sha256(f"{data.fingerprint}|hard-unanswerable|{fraction}|{seed}".encode()).hexdigest()
    return dataclasses.replace(data, examples=data.examples + tuple(extra), version="v2.0",
                               fingerprint=fingerprint), kinds


def _first_edit(example: Example, names: dict[int, list[tuple[str, str]]], rng: random.Random) -> tuple[str, str] | None:
    edits: dict[str, Callable[[], str | None]] = {
        "number": lambda: swap_number(example.question, example.context, rng),
        "entity": lambda: swap_name(example, names, rng),
        "negation": lambda: negate(example.question),
        "antonym": lambda: swap_antonym(example.question, example.context),
    }
    for kind in rng.sample(KINDS, len(KINDS)):
        question = edits[kind]()
        if question is not None and question != example.question:
            return kind, question
    return None


def swap_number(question: str, context: str, rng: random.Random) -> str | None:
    """A number of the question that the paragraph holds, replaced by a nearby one it does not hold."""
    held = set(NUMBER.findall(context))
    found = [m for m in NUMBER.finditer(question) if m.group() in held]
    if not found:
        return None
    match = rng.choice(found)
    value = int(match.group())
    spread = 30 if 1000 <= value <= 2100 else max(3, value // 2)  # a year moves by decades, a count by half
    options = [str(value + d) for d in range(-spread, spread + 1) if d and value + d > 0 and str(value + d) not in held]
    if not options:
        return None
    return question[: match.start()] + rng.choice(options) + question[match.end():]


def swap_name(example: Example, names: dict[int, list[tuple[str, str]]], rng: random.Random,
              tries: int = 20) -> str | None:
    """A name of the question (not its first word) that the paragraph holds, replaced by one of the same
    number of words from another article that the paragraph does not hold."""
    question, lowered = example.question, example.context.lower()
    found = [m for m in NAME.finditer(question)
             if m.start() > 0 and m.group().lower() in lowered and not NOT_NAMES & set(m.group().split())]
    if not found:
        return None
    match = rng.choice(found)
    pool = names.get(match.group().count(" ") + 1, [])
    for _ in range(tries if pool else 0):
        title, name = rng.choice(pool)
        if title != example.title and name.lower() not in lowered:
            return question[: match.start()] + name + question[match.end():]
    return None


def negate(question: str) -> str | None:
    """'What was ...' -> 'What was not ...'; None for a question that already negates or has no such verb."""
    if re.search(r"\bnot\b|n't\b|\bnever\b", question, re.IGNORECASE):
        return None
    match = WH_AUXILIARY.match(question)
    if match is None:
        return None
    return question[: match.end(1)] + " not" + question[match.end(1):]


def swap_antonym(question: str, context: str) -> str | None:
    """The first word with an antonym in ``ANTONYMS`` swapped for it, unless the paragraph uses the antonym."""
    for match in re.finditer(r"\b[A-Za-z]+\b", question):
        word = match.group()
        opposite = ANTONYMS.get(word.lower())
        if opposite is None or re.search(rf"\b{opposite}\b", context, re.IGNORECASE):
            continue
        if word[0].isupper():
            opposite = opposite.capitalize()
        return question[: match.start()] + opposite + question[match.end():]
    return None


def _names_by_width(data: SquadData) -> dict[int, list[tuple[str, str]]]:
    """(article, name) pairs by number of words: every distinct capitalised name of a paragraph that does
    not open a sentence, the pool an entity swap draws from."""
    found: set[tuple[str, str]] = set()
    for example in data.examples:
        for match in NAME.finditer(example.context):
            opens_sentence = match.start() <= 1 or example.context[match.start() - 2] in ".!?"
            if not opens_sentence and not NOT_NAMES & set(match.group().split()):
                found.add((example.title, match.group()))
    names: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for title, name in sorted(found):
        names[name.count(" ") + 1].append((title, name))
    return dict(names)

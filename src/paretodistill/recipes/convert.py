"""A pretrained checkpoint rewritten as another family's: the seed DistilBERT-style students need.

The 2020 experiment seeded its students from a pretrained DistilBERT. No DistilBERT weights can be
downloaded here, but the packaged MiniLM is a BERT of the same layout: ``convert`` copies every
layer, the word and position tables and the embedding LayerNorm into a ``DistilBertModel`` of the
same shape through the family adapters (``models.student.build_student`` with all layers, heads and
neurons kept). DistilBERT has no token types, so BERT's first token-type row is added to every
position: a question-side token embeds exactly as in the source. The converted encoder then
answers question-side inputs as the source does (``max_abs_diff`` in ``convert.json``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from paretodistill.models.families import family_named, family_of
from paretodistill.models.loading import load_seed_model, load_tokenizer, resolve_model_path
from paretodistill.models.student import StudentArchitecture, build_student, count_parameters

CONVERT_FILE = "convert.json"


def convert_checkpoint(source: str, family: str, out_dir: str | Path, log=print) -> dict:
    """Write ``source``'s encoder as a base model of ``family`` into ``out_dir`` with its tokenizer."""
    target = family_named(family)
    path = resolve_model_path(source)
    model = load_seed_model(path).eval()
    source_family = family_of(model, f"checkpoint {source}")
    architecture = StudentArchitecture(
        num_layers=source_family.read(model.config, "layers"), heads_per_layer=source_family.read(model.config, "heads"),
        hidden_dropout=0.1, attention_dropout=0.1, pruning="random", pruning_seed=0,
    )
    converted = build_student(model, architecture, family=family).base_model.eval()
    difference = _question_side_difference(model, source_family, converted)
    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    converted.save_pretrained(staging)
    load_tokenizer(path).save_pretrained(staging)
    record = {"source": str(source), "source_family": source_family.name, "family": target.name,
              "num_parameters": count_parameters(converted), "max_abs_diff": difference}
    (staging / CONVERT_FILE).write_text(json.dumps(record, indent=1))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(staging, out_dir)
    log(f"{source} ({source_family.name}) written as a {target.name} encoder in {out_dir}: "
        f"last hidden states within {difference:.2e} of the source's on question-side tokens")
    return record


@torch.no_grad()
def _question_side_difference(source, source_family, converted) -> float:
    """Largest difference between the two encoders' last hidden states on token type 0 everywhere."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, source.config.vocab_size, (2, 24), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 16:] = 0
    expected = source_family.encoder(source)(input_ids=ids, attention_mask=mask).last_hidden_state
    got = converted(input_ids=ids, attention_mask=mask).last_hidden_state
    return float((expected - got)[mask.bool()].abs().max())

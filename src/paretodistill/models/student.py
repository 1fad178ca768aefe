"""Build a student QA model from a seed checkpoint, DistilBERT style.

A :class:`StudentArchitecture` is what the search proposes. :func:`build_student` turns it into a
model whose embeddings, layers and QA head start as copies (or seeded slices) of the seed's: the
teacher itself, or a separate pretrained checkpoint (``student.init_from``, the way DistilBERT
seeded its students), which is what makes a few epochs of distillation enough. The student is of
the seed's family (``models.families``: BERT, DistilBERT, RoBERTa, ELECTRA, DeBERTa-v2), or of
another family when asked (a BERT checkpoint rewritten as a DistilBERT one): the parts are copied
between families wherever their shapes agree. Everything that cannot be copied (extra layers, a
different hidden width, extra FFN neurons, a part the seed lacks) is initialised the way BERT and
DistilBERT initialise it (normal with ``initializer_range``, LayerNorms at one and zero).

AutoDistill's template parts (``pruned_bert`` module docstring) are seeded as follows:

* ``embedding_size``: the teacher's word table (its kept rows) by truncated SVD, table ~ U S V^T:
  the student's table is ``U_E S_E`` and its projection ``V_E^T`` (bias 0): the best rank-E
  approximation of the teacher's embeddings, exact when E reaches the table's rank. Needs the
  teacher's hidden width (at another width nothing is copied).
* ``vocabulary="corpus"``: the kept rows of the teacher's table (``KeptVocabulary``).
* ``bottleneck_size``: a layer at the bottleneck width has no teacher counterpart: such layers,
  with their two linear maps, get BERT's init; embeddings and QA head are still copied (the width
  between layers is the hidden size).
* ``stacked_ffn``: the first FFN block of a seeded layer is the teacher's; the extra blocks get
  BERT's init (small weights: near a residual pass-through that LayerNorm rescales).
"""

import dataclasses
import random
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel

from paretodistill.config import StudentSettings
from paretodistill.errors import ModelMismatchError
from paretodistill.models.families import MODEL_TYPES, Family, family_named, family_of
from paretodistill.models.importance import UnitImportance
from paretodistill.models.loading import read_config_json, resolve_model_path
from paretodistill.models.vocabulary import KeptVocabulary

# The model types a teacher or a seed may be: every supported family's, pruned students included.
TEACHER_MODEL_TYPES = MODEL_TYPES

# Config values a student of another family than its seed's takes from it (tokenizer- and input-related).
_PORTABLE_FIELDS = ("vocab_size", "max_position_embeddings", "pad_token_id", "layer_norm_eps", "initializer_range")

LAYER_SELECTIONS = ("spread", "bottom", "ends")
VOCABULARIES = ("full", "corpus")
PRUNINGS = ("random", "importance")
_OPTIONAL_SIZES = ("intermediate_size", "hidden_size", "bottleneck_size", "embedding_size")


@dataclass(frozen=True)
class StudentArchitecture:
    """One point of the search space.

    ``heads_per_layer`` heads (of the teacher's head size) are kept in every layer, chosen per
    layer by ``pruning``: ``"random"`` draws them from ``pruning_seed``; ``"importance"`` keeps the
    teacher's highest-scoring ones (a :class:`UnitImportance` given to :func:`build_student`).
    ``intermediate_size=None`` keeps the teacher's FFN width; a smaller one keeps a subset of
    neurons chosen the same way, a larger one copies all the teacher's neurons and initialises the
    rest. ``hidden_size=None`` (or the teacher's) keeps the teacher's
    width; any other width cannot be seeded, so the whole student is freshly initialised, with
    ``hidden_size / heads_per_layer``-sized heads.

    Template fields: ``bottleneck_size`` (None: off; else attention and FFNs run at that width
    between two linear maps, with ``bottleneck_size / heads_per_layer``-sized heads, and layers are
    freshly initialised), ``stacked_ffn`` FFN blocks per layer, ``embedding_size`` (None or the
    hidden size: no factorization) and ``vocabulary`` (``"full"``, or ``"corpus"``: only the
    tokens of a :class:`KeptVocabulary` given to :func:`build_student`).

    Checks that need no teacher run at construction; :meth:`validate` adds the teacher's.
    """

    num_layers: int
    heads_per_layer: int
    # The defaults are the config's (``config.StudentSettings``): one set, read from there.
    pruning_seed: int = StudentSettings.pruning_seed
    intermediate_size: int | None = StudentSettings.intermediate_size
    hidden_size: int | None = StudentSettings.hidden_size
    hidden_dropout: float = StudentSettings.hidden_dropout
    attention_dropout: float = StudentSettings.attention_dropout
    qa_dropout: float = StudentSettings.qa_dropout
    initializer_range: float = StudentSettings.initializer_range
    layer_selection: str = StudentSettings.layer_selection  # which teacher layers seed the student: see layer_map
    bottleneck_size: int | None = StudentSettings.bottleneck_size
    stacked_ffn: int = StudentSettings.stacked_ffn
    embedding_size: int | None = StudentSettings.embedding_size
    vocabulary: str = StudentSettings.vocabulary  # "full" or "corpus"
    pruning: str = StudentSettings.pruning  # "random" or "importance": which heads and FFN neurons are kept

    @classmethod
    def from_settings(cls, settings: StudentSettings, seed_config: PreTrainedConfig) -> "StudentArchitecture":
        """The architecture ``[student]`` describes, field for field (the names are the same);
        ``heads_per_layer=None`` keeps all the seed's heads, which only the seed knows."""
        values = {field.name: getattr(settings, field.name) for field in dataclasses.fields(cls)}
        if values["heads_per_layer"] is None:
            values["heads_per_layer"] = seed_config.num_attention_heads
        return cls(**values)

    def __post_init__(self) -> None:
        for name in ("num_layers", "heads_per_layer", "pruning_seed", "stacked_ffn", *_OPTIONAL_SIZES):
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_SIZES:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ModelMismatchError(f"{name} must be an integer, got {value!r}")
        for name in ("hidden_dropout", "attention_dropout", "qa_dropout", "initializer_range"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise ModelMismatchError(f"{name} must be a number, got {value!r}")
        if self.num_layers < 1:
            raise ModelMismatchError(f"num_layers must be >= 1, got {self.num_layers}")
        if self.heads_per_layer < 1:
            raise ModelMismatchError(f"heads_per_layer must be >= 1, got {self.heads_per_layer}")
        for name in _OPTIONAL_SIZES:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ModelMismatchError(f"{name} must be >= 1 (or None for the default), got {value}")
        if self.stacked_ffn < 1:
            raise ModelMismatchError(f"stacked_ffn must be >= 1, got {self.stacked_ffn}")
        if self.pruning not in PRUNINGS:
            raise ModelMismatchError(f"pruning must be one of {PRUNINGS}, got {self.pruning!r}")
        if self.vocabulary not in VOCABULARIES:
            raise ModelMismatchError(f"vocabulary must be one of {VOCABULARIES}, got {self.vocabulary!r}")
        for name in ("hidden_dropout", "attention_dropout", "qa_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ModelMismatchError(f"{name} must be in [0, 1), got {value}")
        if not self.initializer_range > 0.0:
            raise ModelMismatchError(f"initializer_range must be > 0, got {self.initializer_range}")
        if self.layer_selection not in LAYER_SELECTIONS:
            raise ModelMismatchError(
                f"layer_selection must be one of {LAYER_SELECTIONS}, got {self.layer_selection!r}"
            )

    def validate(self, teacher_config: PreTrainedConfig) -> None:
        """Raise ``ModelMismatchError`` if this architecture cannot be built from that teacher."""
        _resolve(teacher_config, self)


def layer_map(teacher_layers: int, student_layers: int, selection: str = "spread") -> list[int | None]:
    """Which teacher layer seeds each student layer (``None``: freshly initialised).

    Fewer student layers, by ``selection`` (layer 0 is always kept: it is the one trained on the
    embeddings the student also copies):

    * ``spread`` (default): student layer ``i`` copies teacher layer ``(i * teacher_layers) //
      student_layers``, the first layer of the ``i``-th of ``student_layers`` equal blocks. Exact
      halving gives 0, 2, 4, ...: DistilBERT's "one layer out of two" as the paper states it (its
      extraction script took 0, 2, 4, 7, 9, 11 for 12 -> 6 instead). 6 -> 3 is [0, 2, 4].
    * ``bottom``: the teacher's first layers, 6 -> 3 is [0, 1, 2] (a truncated teacher).
    * ``ends``: evenly spaced from the first to the last layer, rounded down, so the layer that
      feeds the teacher's QA head seeds the student's top: 6 -> 3 is [0, 2, 5], 6 -> 1 is [0].

    As many or more student layers: the teacher's layers are copied in order and the extra top
    layers are ``None``; e.g. 6 -> 8 is [0, 1, 2, 3, 4, 5, None, None].
    """
    if teacher_layers < 1 or student_layers < 1:
        raise ModelMismatchError(
            f"layer counts must be >= 1, got teacher {teacher_layers} and student {student_layers}"
        )
    if selection not in LAYER_SELECTIONS:
        raise ModelMismatchError(f"layer selection must be one of {LAYER_SELECTIONS}, got {selection!r}")
    if student_layers >= teacher_layers:
        return list(range(teacher_layers)) + [None] * (student_layers - teacher_layers)
    if selection == "bottom":
        return list(range(student_layers))
    if selection == "ends" and student_layers > 1:
        return [(i * (teacher_layers - 1)) // (student_layers - 1) for i in range(student_layers)]
    return [(i * teacher_layers) // student_layers for i in range(student_layers)]


@dataclass(frozen=True)
class _Geometry:
    """The resolved shape of a student, and where each layer comes from."""

    hidden_size: int
    head_size: int
    heads: list[int]
    intermediate_sizes: list[int]
    seeded_from: list[int | None]  # seed layer copied into each student layer
    bottleneck_size: int | None
    embedding_size: int  # hidden_size when not factorized
    vocabulary_rows: int

    @property
    def layer_width(self) -> int:
        """The width attention and FFNs run at."""
        return self.bottleneck_size or self.hidden_size


def _seed_layers(config: PreTrainedConfig) -> tuple[int, list[int], list[int]]:
    """Head size and per-layer head counts and FFN widths of a seed of any supported family."""
    family = family_of(config, "seed")
    return family.head_size(config), family.heads_per_layer(config), family.intermediate_sizes(config)


def _resolve(
    seed_config: PreTrainedConfig, arch: StudentArchitecture, vocabulary: KeptVocabulary | None = None,
    family: Family | None = None,
) -> _Geometry:
    """Check ``arch`` (and the kept vocabulary) against the seed and the student's family, and work
    out the student's shape."""
    seed_family = family_of(seed_config, "seed")
    family = family or seed_family
    refused = family.unsupported(arch)
    if refused:
        raise ModelMismatchError(
            f"a {family.name} student cannot take {', '.join(f'student.{name}' for name in refused)} "
            "(AutoDistill's template parts and the QA-head dropout are BERT's and DistilBERT's)"
        )
    seed_hidden = seed_family.read(seed_config, "hidden")
    seed_head_size, seed_heads, seed_ffn = _seed_layers(seed_config)
    max_heads = seed_family.read(seed_config, "heads")
    k = arch.heads_per_layer
    if k > max_heads:
        raise ModelMismatchError(f"heads_per_layer {k} exceeds the seed's {max_heads} attention heads per layer")
    seed_layer_count = seed_family.read(seed_config, "layers")
    mapping = layer_map(seed_layer_count, arch.num_layers, arch.layer_selection)
    same_width = arch.hidden_size in (None, seed_hidden)
    if arch.bottleneck_size is not None:
        hidden = arch.hidden_size or seed_hidden
        if arch.bottleneck_size % k != 0:
            raise ModelMismatchError(
                f"bottleneck_size {arch.bottleneck_size} is not divisible by heads_per_layer {k}; "
                "a bottlenecked layer uses heads of size bottleneck_size / heads"
            )
        head_size, seeded_from = arch.bottleneck_size // k, [None] * arch.num_layers
    elif same_width:
        hidden, head_size, seeded_from = seed_hidden, seed_head_size, mapping
        for student_layer, seed_layer in enumerate(mapping):
            if seed_layer is not None and k > seed_heads[seed_layer]:
                raise ModelMismatchError(
                    f"heads_per_layer {k} exceeds the {seed_heads[seed_layer]} heads of seed "
                    f"layer {seed_layer}, which seeds student layer {student_layer}"
                )
        if not family.prunes_heads and k * head_size != hidden:
            raise ModelMismatchError(
                f"a {family.name} student cannot keep {k} of its seed's {hidden // head_size} heads "
                f"(student.heads_per_layer): its attention cannot drop heads"
            )
    else:
        hidden = arch.hidden_size
        if hidden % k != 0:
            raise ModelMismatchError(
                f"hidden_size {hidden} is not divisible by heads_per_layer {k}; a student whose width "
                f"differs from the seed's ({seed_hidden}) uses heads of size hidden_size / heads"
            )
        head_size, seeded_from = hidden // k, [None] * arch.num_layers
    if arch.intermediate_size is not None:
        ffn = [arch.intermediate_size] * arch.num_layers
    else:  # the seed's width of the seeding layer (its nominal width for unseeded layers)
        ffn = [seed_family.read(seed_config, "intermediate") if t is None else seed_ffn[t] for t in mapping]
    rows = len(vocabulary) if vocabulary is not None else seed_config.vocab_size
    return _Geometry(
        hidden, head_size, [k] * arch.num_layers, ffn, seeded_from,
        bottleneck_size=arch.bottleneck_size, embedding_size=arch.embedding_size or hidden, vocabulary_rows=rows,
    )


def _check_seed(seed: PreTrainedModel) -> Family:
    family = family_of(seed, "seed")
    if getattr(seed.config, "is_template", False):
        raise ModelMismatchError("a checkpoint with bottleneck or stacked-FFN layers cannot seed a student")
    return family


def _check_vocabulary(seed_config, arch: StudentArchitecture, vocabulary: KeptVocabulary | None) -> None:
    """A corpus vocabulary needs the kept ids, and only it takes them."""
    if (arch.vocabulary == "corpus") != (vocabulary is not None):
        raise ModelMismatchError(
            f"vocabulary {arch.vocabulary!r} needs {'a' if vocabulary is None else 'no'} KeptVocabulary "
            "(the token ids of the corpus)"
        )
    if vocabulary is not None and vocabulary.token_ids[-1] >= seed_config.vocab_size:
        raise ModelMismatchError(
            f"kept token id {vocabulary.token_ids[-1]} is outside the seed's vocabulary of {seed_config.vocab_size}"
        )


def factorize_table(table: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated SVD of an embedding table: ``(U_E S_E, V_E)`` with ``table ~ U_E S_E @ V_E.T``.

    The first is the narrow table (rows x rank), the second the projection's weight (width x
    rank, as ``nn.Linear(rank, width)`` stores it): the best rank-``rank`` approximation of the
    table in the Frobenius norm (Eckart-Young). Computed in float64.
    """
    u, s, vh = torch.linalg.svd(table.double(), full_matrices=False)
    return (u[:, :rank] * s[:rank]).to(table.dtype), vh[:rank].T.contiguous().to(table.dtype)


def _copy_module(source: nn.Module | None, target: nn.Module | None) -> bool:
    """Copy ``source``'s weights into ``target`` when both exist with the same names and shapes."""
    if source is None or target is None:
        return False
    theirs, ours = source.state_dict(), target.state_dict()
    if theirs.keys() != ours.keys() or any(theirs[k].shape != ours[k].shape for k in ours):
        return False
    target.load_state_dict(theirs)
    return True


@torch.no_grad()
def _copy_template_words(seed, seed_family: Family, student, vocabulary: KeptVocabulary | None) -> None:
    """A template BERT student's word table: the seed's kept rows, factorized by SVD when narrower."""
    words = seed_family.embedding_parts(seed).words  # a (template) seed's effective table, one row per tokenizer id
    table = words(torch.arange(seed.config.vocab_size, device=seed.device))
    target = student.bert.embeddings.word_embeddings
    if vocabulary is not None:
        table = table[list(vocabulary.token_ids)]
        target.token_map.copy_(vocabulary.token_map(seed.config.vocab_size))
    projection = getattr(target, "projection", None)
    if projection is None:
        getattr(target, "table", target).weight.copy_(table)
        return
    narrow, up = factorize_table(table, projection.in_features)
    target.table.weight.copy_(narrow)
    projection.weight.copy_(up)
    projection.bias.zero_()


@torch.no_grad()
def _copy_embeddings(seed, seed_family: Family, student, family: Family, vocabulary: KeptVocabulary | None) -> None:
    """The seed's embeddings wherever the student's have the same part at the same width.

    Positions are matched by position, not by row (RoBERTa's start after its padding id). A
    student without token types (DistilBERT) of a seed with them gets the first type's row added
    to every position: a question-side token embeds exactly as in the seed.
    """
    source, target = seed_family.embedding_parts(seed), family.embedding_parts(student)
    if not isinstance(target.words, nn.Embedding):  # a template table (kept rows, factorized)
        _copy_template_words(seed, seed_family, student, vocabulary)
    elif target.words.weight.shape == source.words.weight.shape:
        target.words.weight.copy_(source.words.weight)
    _copy_module(source.norm, target.norm)
    _copy_module(source.projection, target.projection)
    if _same_width(source.positions, target.positions):
        count = min(source.positions.num_embeddings - source.position_offset,
                    target.positions.num_embeddings - target.position_offset)
        target.positions.weight[target.position_offset:target.position_offset + count].copy_(
            source.positions.weight[source.position_offset:source.position_offset + count])
    if _same_width(source.token_types, target.token_types):
        rows = min(source.token_types.num_embeddings, target.token_types.num_embeddings)
        target.token_types.weight[:rows].copy_(source.token_types.weight[:rows])
    elif target.token_types is None and _same_width(source.token_types, target.positions):
        target.positions.weight.add_(source.token_types.weight[0])


def _same_width(source: nn.Embedding | None, target: nn.Embedding | None) -> bool:
    return source is not None and target is not None and source.embedding_dim == target.embedding_dim


def resolve_teacher(name: str | Path, what: str = "teacher") -> str:
    """The local folder of a teacher or seed (a folder, or a hub id's snapshot), refused before any
    work when no family adapter reads it; the message names the supported families."""
    path = resolve_model_path(name)
    family_of(read_config_json(path, f"{what} {name}"), f"{what} {name}")
    return path


def _choose(seed: int, what: str, layer: int, available: int, keep: int) -> list[int]:
    """Seeded choice of ``keep`` of ``available`` indices, sorted.

    Seeded per (seed, what, layer) with a string, which ``random`` hashes with SHA-512: stable
    across processes and independent of the other choices made for the same student.
    """
    if keep >= available:
        return list(range(available))
    return sorted(random.Random(f"paretodistill/{seed}/{what}/{layer}").sample(range(available), keep))


def _student_config(seed_config: PreTrainedConfig, family: Family, arch: StudentArchitecture, geo: _Geometry,
                    kept_heads: list, seed_checkpoint: str | None) -> PreTrainedConfig:
    """The student's config in its family: the seed's own values when it is of that family (else
    the portable ones), the student's shape, and where its weights came from (saved in config.json)."""
    if family_of(seed_config, "seed") is family:
        base = seed_config.to_dict()
    else:
        base = {name: getattr(seed_config, name) for name in _PORTABLE_FIELDS if hasattr(seed_config, name)}
    provenance = dict(pruning_seed=arch.pruning_seed, pruning=arch.pruning, layer_selection=arch.layer_selection,
                      seeded_from=geo.seeded_from, kept_heads=kept_heads)
    if seed_checkpoint is not None:
        provenance["seed_checkpoint"] = seed_checkpoint
    shape = dict(
        layers=arch.num_layers, hidden=geo.hidden_size, head_size=geo.head_size, heads=geo.heads,
        intermediate=geo.intermediate_sizes, hidden_dropout=arch.hidden_dropout,
        attention_dropout=arch.attention_dropout, qa_dropout=arch.qa_dropout,
        initializer_range=arch.initializer_range, provenance=provenance,
    )
    if family.template:
        template = dict(
            bottleneck_size=arch.bottleneck_size, stacked_ffn=arch.stacked_ffn,
            embedding_size=geo.embedding_size if geo.embedding_size != geo.hidden_size else None,
            embedded_vocab_size=geo.vocabulary_rows if arch.vocabulary == "corpus" else None,
            vocabulary=arch.vocabulary,
        )
        return family.student_config(base, template=template, **shape)
    return family.student_config(base, **shape)


@torch.no_grad()
def _copy_layer(source, target, heads: list[int], neurons: list[int], head_size: int) -> None:
    """Copy the kept heads and FFN neurons of a seed layer into a student layer (both ``LayerParts``).

    Heads are rows of q/k/v and columns of the attention-output linear; neurons are rows of the
    FFN's input linear and columns of its output linear. They fill the student's first positions;
    any positions left over (a wider FFN) keep their fresh initialisation.
    """
    rows = torch.cat([torch.arange(h * head_size, (h + 1) * head_size) for h in heads])
    for name in ("query", "key", "value"):
        src, dst = getattr(source, name), getattr(target, name)
        dst.weight.copy_(src.weight[rows])
        dst.bias.copy_(src.bias[rows])
    target.attention_output.weight.copy_(source.attention_output.weight[:, rows])
    target.attention_output.bias.copy_(source.attention_output.bias)
    target.attention_norm.load_state_dict(source.attention_norm.state_dict())

    cols = torch.tensor(neurons)
    n = len(neurons)
    target.ffn_input.weight[:n].copy_(source.ffn_input.weight[cols])
    target.ffn_input.bias[:n].copy_(source.ffn_input.bias[cols])
    target.ffn_output.weight[:, :n].copy_(source.ffn_output.weight[:, cols])
    target.ffn_output.bias.copy_(source.ffn_output.bias)
    target.output_norm.load_state_dict(source.output_norm.state_dict())


def build_student(
    seed: PreTrainedModel, arch: StudentArchitecture, vocabulary: KeptVocabulary | None = None,
    importance: UnitImportance | None = None, *, family: str | None = None, seed_checkpoint: str | None = None,
) -> PreTrainedModel:
    """A student QA model seeded from ``seed``, in eval mode, float32, on the seed's device.

    ``seed`` is the teacher, or a separate pretrained checkpoint (a base or a QA model; name it in
    ``seed_checkpoint``, saved in the config, so layer-wise losses know the student's heads are not
    the teacher's). The student is of ``family`` (default: the seed's). Embeddings and the QA head
    are copied when the width matches (a base-model seed has no QA head: the student's is new);
    student layer ``i`` gets the kept heads/neurons of seed layer ``layer_map(...)[i]``. Which heads
    were kept is saved in the config as ``kept_heads`` (per student layer, indices into the seeding
    layer's heads; ``None`` for unseeded layers), with ``seeded_from`` and ``pruning_seed``.
    Unseeded parameters get the family's init with ``arch.initializer_range``, drawn from a
    generator seeded with ``pruning_seed``, so the same seed and architecture give the same student.

    Template parts (BERT only) are seeded as the module docstring says; ``vocabulary`` (the kept
    token ids) is required with ``arch.vocabulary == "corpus"`` and refused otherwise;
    ``importance`` (the seed's unit scores) likewise with ``arch.pruning == "importance"``.

    Returns the family's stock QA class when it can describe the student (every layer keeps all
    its heads, one FFN width, no template part, and for BERT no QA-head dropout); otherwise the
    family's pruned variant (``models.pruned_bert``, ``models.pruned_encoders``).
    """
    seed_family = _check_seed(seed)
    student_family = family_named(family) if family else seed_family
    _check_vocabulary(seed.config, arch, vocabulary)
    if importance is not None and arch.pruning != "importance":
        raise ModelMismatchError(f"pruning {arch.pruning!r}: unit importance scores are for 'importance' pruning only")
    if importance is None and arch.pruning == "importance" and cuts_units(seed.config, arch):
        raise ModelMismatchError("pruning 'importance': this student drops heads or FFN neurons of its seed's "
                                 "layers, and choosing them needs the seed's unit importance scores")
    geo = _resolve(seed.config, arch, vocabulary, student_family)
    seed_head_size, seed_heads, seed_ffn = _seed_layers(seed.config)
    kept_heads, kept_neurons = [], []
    for i, t in enumerate(geo.seeded_from):
        if t is None:
            kept_heads.append(None)
            kept_neurons.append(None)
            continue
        if importance is not None:
            kept_heads.append(importance.top("heads", t, geo.heads[i]))
            kept_neurons.append(importance.top("ffn", t, geo.intermediate_sizes[i]))
        else:
            kept_heads.append(_choose(arch.pruning_seed, "heads", i, seed_heads[t], geo.heads[i]))
            kept_neurons.append(_choose(arch.pruning_seed, "ffn", i, seed_ffn[t], geo.intermediate_sizes[i]))

    config = _student_config(seed.config, student_family, arch, geo, kept_heads, seed_checkpoint)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(arch.pruning_seed)
        student = student_family.student_class(config)(config)

    if geo.hidden_size == seed_family.read(seed.config, "hidden"):
        _copy_embeddings(seed, seed_family, student, student_family, vocabulary)
        if seed_family.has_qa_head(seed):
            student.qa_outputs.load_state_dict(seed.qa_outputs.state_dict())
        if seed_family is student_family:
            for name, module in student_family.extra_modules(student).items():
                _copy_module(seed_family.extra_modules(seed).get(name), module)
    seed_layers, student_layers = seed_family.layers(seed), student_family.layers(student)
    for i, t in enumerate(geo.seeded_from):
        if t is None:
            continue
        if seed_family is student_family and _copy_module(seed_layers[t], student_layers[i]):
            continue  # the whole layer, parts no adapter names included (DeBERTa's position projections)
        _copy_layer(seed_family.layer_parts(seed_layers[t]), student_family.layer_parts(student_layers[i]),
                    kept_heads[i], kept_neurons[i], seed_head_size)
    return student.to(seed.device).eval()


def cuts_units(seed_config: PreTrainedConfig, arch: StudentArchitecture) -> bool:
    """Whether some student layer copies only part of its seed layer's heads or FFN neurons:
    only then does ``pruning`` choose anything."""
    geo = _resolve(seed_config, arch)
    _, seed_heads, seed_ffn = _seed_layers(seed_config)
    return any(t is not None and (geo.heads[i] < seed_heads[t] or geo.intermediate_sizes[i] < seed_ffn[t])
               for i, t in enumerate(geo.seeded_from))


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def expected_parameter_count(
    seed_config: PreTrainedConfig, arch: StudentArchitecture, vocabulary: KeptVocabulary | None = None
) -> int:
    """Parameters of the student ``build_student`` would build from a seed with this config, without
    building its weights: the student's modules are made on the meta device and counted."""
    _check_vocabulary(seed_config, arch, vocabulary)
    family = family_of(seed_config, "seed")
    geo = _resolve(seed_config, arch, vocabulary, family)
    config = _student_config(seed_config, family, arch, geo, [None] * arch.num_layers, None)
    with torch.device("meta"):
        return count_parameters(family.student_class(config)(config))

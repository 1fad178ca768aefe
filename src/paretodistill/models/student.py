"""Build a student QA model from a BERT teacher, DistilBERT style.

A :class:`StudentArchitecture` is what the search proposes. :func:`build_student` turns it into a
model whose embeddings, layers and QA head start as copies (or seeded slices) of the teacher's,
which is what makes a few epochs of distillation enough. Everything that cannot be copied (extra
layers, a different hidden width, extra FFN neurons) is initialised the BERT way.

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

import json
import random
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import torch
from transformers import BertConfig, BertForQuestionAnswering, PreTrainedConfig, PreTrainedModel

from paretodistill.errors import ModelMismatchError
from paretodistill.models.importance import UnitImportance
from paretodistill.models.loading import resolve_model_path
from paretodistill.models.pruned_bert import PrunedBertConfig, PrunedBertForQuestionAnswering
from paretodistill.models.vocabulary import KeptVocabulary

# The families whose layers build_student can copy: BERT and the pruned BERT it writes itself.
# Other encoders (RoBERTa, DistilBERT, ELECTRA, ...) name their weights and layers differently.
TEACHER_MODEL_TYPES = ("bert", PrunedBertConfig.model_type)

# Teacher config fields a student inherits unchanged (tokenizer- and input-related).
_INHERITED_FIELDS = (
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
    "hidden_act",
    "layer_norm_eps",
    "pad_token_id",
)

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
    pruning_seed: int = 0
    intermediate_size: int | None = None
    hidden_size: int | None = None
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    qa_dropout: float = 0.0
    initializer_range: float = 0.02
    layer_selection: str = "spread"  # which teacher layers seed the student: see layer_map
    bottleneck_size: int | None = None
    stacked_ffn: int = 1
    embedding_size: int | None = None
    vocabulary: str = "full"  # "full" or "corpus"
    pruning: str = "random"  # "random" or "importance": which heads and FFN neurons are kept

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
    seeded_from: list[int | None]  # teacher layer copied into each student layer
    bottleneck_size: int | None
    embedding_size: int  # hidden_size when not factorized
    vocabulary_rows: int

    @property
    def layer_width(self) -> int:
        """The width attention and FFNs run at."""
        return self.bottleneck_size or self.hidden_size

    @property
    def is_plain_bert(self) -> bool:
        """True when ``BertConfig`` can describe it: all heads kept, one FFN width, no template part."""
        return (
            all(k * self.head_size == self.hidden_size for k in self.heads)
            and len(set(self.intermediate_sizes)) == 1
            and self.bottleneck_size is None
            and self.embedding_size == self.hidden_size
        )


def _teacher_layers(config: PreTrainedConfig) -> tuple[int, list[int], list[int]]:
    """Head size and per-layer head counts and FFN widths of a BERT or pruned-BERT config."""
    layers = config.num_hidden_layers
    head_size = getattr(config, "attention_head_size", None) or (
        config.hidden_size // config.num_attention_heads
    )
    heads = getattr(config, "heads_per_layer", None) or [config.num_attention_heads] * layers
    ffn = getattr(config, "intermediate_sizes", None) or [config.intermediate_size] * layers
    return head_size, list(heads), list(ffn)


def _resolve(
    teacher_config: PreTrainedConfig, arch: StudentArchitecture, vocabulary: KeptVocabulary | None = None
) -> _Geometry:
    """Check ``arch`` (and the kept vocabulary) against the teacher and work out the student's shape."""
    teacher_hidden = teacher_config.hidden_size
    teacher_head_size, teacher_heads, teacher_ffn = _teacher_layers(teacher_config)
    max_heads = teacher_config.num_attention_heads
    k = arch.heads_per_layer
    if k > max_heads:
        raise ModelMismatchError(
            f"heads_per_layer {k} exceeds the teacher's {max_heads} attention heads per layer"
        )
    mapping = layer_map(teacher_config.num_hidden_layers, arch.num_layers, arch.layer_selection)
    same_width = arch.hidden_size in (None, teacher_hidden)
    if arch.bottleneck_size is not None:
        hidden = arch.hidden_size or teacher_hidden
        if arch.bottleneck_size % k != 0:
            raise ModelMismatchError(
                f"bottleneck_size {arch.bottleneck_size} is not divisible by heads_per_layer {k}; "
                "a bottlenecked layer uses heads of size bottleneck_size / heads"
            )
        head_size, seeded_from = arch.bottleneck_size // k, [None] * arch.num_layers
    elif same_width:
        hidden, head_size, seeded_from = teacher_hidden, teacher_head_size, mapping
        for student_layer, teacher_layer in enumerate(mapping):
            if teacher_layer is not None and k > teacher_heads[teacher_layer]:
                raise ModelMismatchError(
                    f"heads_per_layer {k} exceeds the {teacher_heads[teacher_layer]} heads of teacher "
                    f"layer {teacher_layer}, which seeds student layer {student_layer}"
                )
    else:
        hidden = arch.hidden_size
        if hidden % k != 0:
            raise ModelMismatchError(
                f"hidden_size {hidden} is not divisible by heads_per_layer {k}; a student whose width "
                f"differs from the teacher's ({teacher_hidden}) uses heads of size hidden_size / heads"
            )
        head_size, seeded_from = hidden // k, [None] * arch.num_layers
    if arch.intermediate_size is not None:
        ffn = [arch.intermediate_size] * arch.num_layers
    else:  # the teacher's width of the seeding layer (its nominal width for unseeded layers)
        ffn = [teacher_config.intermediate_size if t is None else teacher_ffn[t] for t in mapping]
    rows = len(vocabulary) if vocabulary is not None else teacher_config.vocab_size
    return _Geometry(
        hidden, head_size, [k] * arch.num_layers, ffn, seeded_from,
        bottleneck_size=arch.bottleneck_size, embedding_size=arch.embedding_size or hidden, vocabulary_rows=rows,
    )


def _check_teacher(teacher: PreTrainedModel) -> None:
    if not isinstance(teacher, BertForQuestionAnswering):
        raise ModelMismatchError(
            f"the teacher must be a question-answering model of model type {' or '.join(TEACHER_MODEL_TYPES)} "
            f"(BertForQuestionAnswering or PrunedBertForQuestionAnswering), got {type(teacher).__name__}"
        )
    if getattr(teacher.config, "is_template", False):
        raise ModelMismatchError("a teacher with bottleneck or stacked-FFN layers cannot seed a student")


def _check_vocabulary(teacher_config, arch: StudentArchitecture, vocabulary: KeptVocabulary | None) -> None:
    """A corpus vocabulary needs the kept ids, and only it takes them."""
    if (arch.vocabulary == "corpus") != (vocabulary is not None):
        raise ModelMismatchError(
            f"vocabulary {arch.vocabulary!r} needs {'a' if vocabulary is None else 'no'} KeptVocabulary "
            "(the token ids of the corpus)"
        )
    if vocabulary is not None and vocabulary.token_ids[-1] >= teacher_config.vocab_size:
        raise ModelMismatchError(
            f"kept token id {vocabulary.token_ids[-1]} is outside the teacher's vocabulary of {teacher_config.vocab_size}"
        )


def factorize_table(table: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated SVD of an embedding table: ``(U_E S_E, V_E)`` with ``table ~ U_E S_E @ V_E.T``.

    The first is the narrow table (rows x rank), the second the projection's weight (width x
    rank, as ``nn.Linear(rank, width)`` stores it): the best rank-``rank`` approximation of the
    table in the Frobenius norm (Eckart-Young). Computed in float64.
    """
    u, s, vh = torch.linalg.svd(table.double(), full_matrices=False)
    return (u[:, :rank] * s[:rank]).to(table.dtype), vh[:rank].T.contiguous().to(table.dtype)


@torch.no_grad()
def _copy_embeddings(teacher, student, vocabulary: KeptVocabulary | None) -> None:
    """The teacher's word rows (kept ones; factorized by SVD for a narrower table), positions, types, LayerNorm."""
    source, target = teacher.bert.embeddings, student.bert.embeddings
    for name in ("position_embeddings", "token_type_embeddings", "LayerNorm"):
        getattr(target, name).load_state_dict(getattr(source, name).state_dict())
    words = source.word_embeddings  # a (possibly template) teacher's effective table, one row per tokenizer id
    table = words(torch.arange(teacher.config.vocab_size, device=teacher.device))
    if vocabulary is not None:
        table = table[list(vocabulary.token_ids)]
        target.word_embeddings.token_map.copy_(vocabulary.token_map(teacher.config.vocab_size))
    projection = getattr(target.word_embeddings, "projection", None)
    if projection is None:
        getattr(target.word_embeddings, "table", target.word_embeddings).weight.copy_(table)
        return
    narrow, up = factorize_table(table, projection.in_features)
    target.word_embeddings.table.weight.copy_(narrow)
    projection.weight.copy_(up)
    projection.bias.zero_()


def resolve_teacher(name: str | Path) -> str:
    """The teacher's local folder (a folder, or a hub id's snapshot), refused before any work when
    the student builder cannot copy its family; the message names the supported model types."""
    path = resolve_model_path(name)
    config_file = Path(path) / "config.json"
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (OSError, json.JSONDecodeError) as error:
        raise ModelMismatchError(f"teacher {name}: no readable config.json in {path} ({error})") from None
    if model_type not in TEACHER_MODEL_TYPES:
        raise ModelMismatchError(
            f"teacher {name} is a {model_type!r} model; students can be built from model types "
            f"{', '.join(TEACHER_MODEL_TYPES)} only (their layers are copied into the student)"
        )
    return path


def _choose(seed: int, what: str, layer: int, available: int, keep: int) -> list[int]:
    """Seeded choice of ``keep`` of ``available`` indices, sorted.

    Seeded per (seed, what, layer) with a string, which ``random`` hashes with SHA-512: stable
    across processes and independent of the other choices made for the same student.
    """
    if keep >= available:
        return list(range(available))
    return sorted(random.Random(f"paretodistill/{seed}/{what}/{layer}").sample(range(available), keep))


def _student_config(
    teacher_config: PreTrainedConfig, arch: StudentArchitecture, geo: _Geometry, kept_heads: list
) -> BertConfig:
    """The student's config: plain BERT when that can describe it, else the pruned variant."""
    fields = {name: getattr(teacher_config, name) for name in _INHERITED_FIELDS}
    fields.update(
        hidden_size=geo.hidden_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=geo.hidden_size // geo.head_size,
        intermediate_size=geo.intermediate_sizes[0],
        hidden_dropout_prob=float(arch.hidden_dropout),
        attention_probs_dropout_prob=float(arch.attention_dropout),
        initializer_range=float(arch.initializer_range),
        attn_implementation="sdpa",
        # provenance, saved in config.json
        pruning_seed=arch.pruning_seed,
        pruning=arch.pruning,
        layer_selection=arch.layer_selection,
        seeded_from=geo.seeded_from,
        kept_heads=kept_heads,
    )
    if geo.is_plain_bert and arch.qa_dropout == 0 and arch.stacked_ffn == 1 and arch.vocabulary == "full":
        return BertConfig(**fields)
    return PrunedBertConfig(
        **fields,
        heads_per_layer=geo.heads,
        intermediate_sizes=geo.intermediate_sizes,
        attention_head_size=geo.head_size,
        qa_dropout=float(arch.qa_dropout),
        bottleneck_size=arch.bottleneck_size,
        stacked_ffn=arch.stacked_ffn,
        embedding_size=geo.embedding_size if geo.embedding_size != geo.hidden_size else None,
        embedded_vocab_size=geo.vocabulary_rows if arch.vocabulary == "corpus" else None,
        vocabulary=arch.vocabulary,
    )


@torch.no_grad()
def _copy_layer(teacher_layer, student_layer, heads: list[int], neurons: list[int], head_size: int) -> None:
    """Copy the kept heads and FFN neurons of a teacher layer into a student layer.

    Heads are rows of q/k/v and columns of the attention-output dense; neurons are rows of the
    intermediate dense and columns of the output dense. They fill the student's first positions;
    any positions left over (a wider FFN) keep their fresh initialisation.
    """
    rows = torch.cat([torch.arange(h * head_size, (h + 1) * head_size) for h in heads])
    t_att, s_att = teacher_layer.attention, student_layer.attention
    for name in ("query", "key", "value"):
        src, dst = getattr(t_att.self, name), getattr(s_att.self, name)
        dst.weight.copy_(src.weight[rows])
        dst.bias.copy_(src.bias[rows])
    s_att.output.dense.weight.copy_(t_att.output.dense.weight[:, rows])
    s_att.output.dense.bias.copy_(t_att.output.dense.bias)
    s_att.output.LayerNorm.load_state_dict(t_att.output.LayerNorm.state_dict())

    cols = torch.tensor(neurons)
    n = len(neurons)
    student_layer.intermediate.dense.weight[:n].copy_(teacher_layer.intermediate.dense.weight[cols])
    student_layer.intermediate.dense.bias[:n].copy_(teacher_layer.intermediate.dense.bias[cols])
    student_layer.output.dense.weight[:, :n].copy_(teacher_layer.output.dense.weight[:, cols])
    student_layer.output.dense.bias.copy_(teacher_layer.output.dense.bias)
    student_layer.output.LayerNorm.load_state_dict(teacher_layer.output.LayerNorm.state_dict())


def build_student(
    teacher: PreTrainedModel, arch: StudentArchitecture, vocabulary: KeptVocabulary | None = None,
    importance: UnitImportance | None = None,
) -> BertForQuestionAnswering:
    """A student QA model seeded from ``teacher``, in eval mode, float32, on the teacher's device.

    Embeddings and the QA head are copied when the width matches; student layer ``i`` gets the
    seeded heads/neurons of teacher layer ``layer_map(...)[i]``. Which heads were kept is saved
    in the config as ``kept_heads`` (per student layer, indices into the seeding teacher layer's
    heads; ``None`` for unseeded layers), with ``seeded_from`` and ``pruning_seed``. Unseeded
    parameters get BERT's init with ``arch.initializer_range``, drawn from a generator seeded
    with ``pruning_seed``, so the same teacher and architecture always give the same student.

    Template parts are seeded as the module docstring says; ``vocabulary`` (the kept token ids)
    is required with ``arch.vocabulary == "corpus"`` and refused otherwise; ``importance`` (the
    teacher's unit scores) likewise with ``arch.pruning == "importance"``.

    Returns a plain ``BertForQuestionAnswering`` when BERT can describe the student (every layer
    keeps all its heads, one FFN width, no template part) and ``qa_dropout == 0``; otherwise a
    ``PrunedBertForQuestionAnswering``, which is also the only one with a QA-head dropout.
    """
    _check_teacher(teacher)
    _check_vocabulary(teacher.config, arch, vocabulary)
    if importance is not None and arch.pruning != "importance":
        raise ModelMismatchError(f"pruning {arch.pruning!r}: unit importance scores are for 'importance' pruning only")
    if importance is None and arch.pruning == "importance" and cuts_units(teacher.config, arch):
        raise ModelMismatchError("pruning 'importance': this student drops heads or FFN neurons of the teacher's "
                                 "layers, and choosing them needs the teacher's unit importance scores")
    geo = _resolve(teacher.config, arch, vocabulary)
    teacher_head_size, teacher_heads, teacher_ffn = _teacher_layers(teacher.config)
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
            kept_heads.append(_choose(arch.pruning_seed, "heads", i, teacher_heads[t], geo.heads[i]))
            kept_neurons.append(_choose(arch.pruning_seed, "ffn", i, teacher_ffn[t], geo.intermediate_sizes[i]))

    config = _student_config(teacher.config, arch, geo, kept_heads)
    pruned = isinstance(config, PrunedBertConfig)
    model_class = PrunedBertForQuestionAnswering if pruned else BertForQuestionAnswering
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(arch.pruning_seed)
        student = model_class(config)

    if geo.hidden_size == teacher.config.hidden_size:
        _copy_embeddings(teacher, student, vocabulary)
        student.qa_outputs.load_state_dict(teacher.qa_outputs.state_dict())
    for i, t in enumerate(geo.seeded_from):
        if t is not None:
            _copy_layer(
                teacher.bert.encoder.layer[t], student.bert.encoder.layer[i],
                kept_heads[i], kept_neurons[i], teacher_head_size,
            )
    return student.to(teacher.device).eval()


def cuts_units(teacher_config: PreTrainedConfig, arch: StudentArchitecture) -> bool:
    """Whether some student layer copies only part of its teacher layer's heads or FFN neurons:
    only then does ``pruning`` choose anything."""
    geo = _resolve(teacher_config, arch)
    _, teacher_heads, teacher_ffn = _teacher_layers(teacher_config)
    return any(t is not None and (geo.heads[i] < teacher_heads[t] or geo.intermediate_sizes[i] < teacher_ffn[t])
               for i, t in enumerate(geo.seeded_from))


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def expected_parameter_count(
    teacher_config: PreTrainedConfig, arch: StudentArchitecture, vocabulary: KeptVocabulary | None = None
) -> int:
    """Parameters of the student ``build_student`` would build, in closed form, without building it."""
    _check_vocabulary(teacher_config, arch, vocabulary)
    geo = _resolve(teacher_config, arch, vocabulary)
    h, d, b, e = geo.hidden_size, geo.head_size, geo.layer_width, geo.embedding_size
    embeddings = (
        geo.vocabulary_rows * e
        + (e * h + h if e != h else 0)  # factorized: the projection up to the hidden size
        + teacher_config.max_position_embeddings * h
        + teacher_config.type_vocab_size * h
        + 2 * h  # LayerNorm
    )
    layers = 0
    for k, f in zip(geo.heads, geo.intermediate_sizes, strict=True):
        width = k * d
        layers += (
            3 * (b * width + width)  # query, key, value
            + (width * b + b)  # attention output dense
            + 2 * b  # attention LayerNorm
            + arch.stacked_ffn * (
                (b * f + f)  # intermediate dense
                + (f * b + b)  # output dense
                + 2 * b  # output LayerNorm
            )
        )
        if geo.bottleneck_size is not None:  # the bottleneck's two maps: Linear + LayerNorm down, Linear + LayerNorm up
            layers += (h * b + b) + 2 * b + (b * h + h) + 2 * h
    qa_head = 2 * h + 2  # no pooler in a QA model
    return embeddings + layers + qa_head

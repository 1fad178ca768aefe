"""Task-agnostic distillation on unlabeled text: DistilBERT's losses, plus layer-wise transfer.

    loss = soft_weight      * KL(teacher || student) of the MLM distributions at the masked tokens, at T, x T²
         + hard_weight      * cross-entropy of the student's MLM logits against the masked tokens
         + cosine_weight    * (1 - cos) between the student's and the teacher's last hidden states
         + hidden_weight    * layer-wise MSE of hidden states, through a projection when widths differ
         + attention_weight * layer-wise KL of attention maps

The first three are DistilBERT's L_ce, L_mlm and L_cos (Sanh et al., 2019; weights 5/2/1, T = 2);
the last two are AutoDistill's feature-map and attention transfer, on by default only when the
student's width differs from the teacher's (:func:`layerwise_weights`), since such a student
cannot be seeded from the teacher's layers. They are ``distill.losses``' functions, the ones
task-specific distillation uses, with the same layer pairs; the cosine term goes through the same
projection when the widths differ.

Soft MLM needs the teacher's MLM distribution. A teacher fine-tuned for QA from an encoder with
no MLM head (the packaged MiniLM: ``models.masked_lm``) has none, so the recipe first *fits* one:
BERT's head on the teacher's frozen last layer, trained with L_mlm alone on the same text
(:class:`MaskedLMModel` with ``train_encoder=False``, ``pretrain.head_steps`` steps; only the
transform and the bias learn: the decoder is the frozen word table). The teacher's encoder does
not change, so "the teacher's MLM distribution" then means what a light head reads off the
teacher's final representations about the masked token; soft MLM passes that, with its ranking
of the alternatives, to the student, whose head starts as a copy of the fitted one. The fit costs
one teacher forward per step and no encoder backward; its time and held-out accuracy are recorded
(``pretrain.json``). ``soft_weight = 0`` (and ``head_steps = 0``) drops soft MLM instead.

Only masked tokens get MLM logits (DistilBERT's ``restrict_ce_to_mask``): the fitted head was
trained there only, and the 30,522-way projection at every token would cost more than a small
student's layers. Masking is BERT's (15%: 80% [MASK], 10% a random token, 10% unchanged), by
transformers' ``DataCollatorForLanguageModeling``, drawn from torch's global generator, which
the training loop seeds and saves with its state, so a resumed run masks as the killed one did.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import DataCollatorForLanguageModeling

from paretodistill.config import PretrainSettings
from paretodistill.data.features import Features
from paretodistill.distill.losses import (
    attention_map_loss,
    cosine_loss,
    distillation_kl,
    hidden_state_loss,
    layer_pairs,
    width_projection,
)
from paretodistill.errors import ConfigError
from paretodistill.models.masked_lm import MaskedLMHead, word_table
from paretodistill.training.batching import collate, evaluation_batches

IGNORED = -100  # label of a token that is not predicted (the collator's convention)


def check_pretrain_settings(settings: PretrainSettings) -> None:
    """Refuse weights, temperatures and masking rates that make no sense, or an empty loss."""
    names = ("soft_weight", "hard_weight", "cosine_weight", "hidden_weight", "attention_weight")
    for name in names:
        value = getattr(settings, name)
        if value is not None and value < 0:
            raise ConfigError(f"pretrain.{name} must be >= 0, got {value}")
    if not settings.temperature > 0:
        raise ConfigError(f"pretrain.temperature must be > 0, got {settings.temperature}")
    if not 0 < settings.mask_probability < 1:
        raise ConfigError(f"pretrain.mask_probability must be in (0, 1), got {settings.mask_probability}")
    if settings.head_steps < 0 or settings.heldout_paragraphs < 0:
        raise ConfigError("pretrain.head_steps and pretrain.heldout_paragraphs must be >= 0")
    if not any(getattr(settings, name) for name in names):
        raise ConfigError("every pretrain weight is 0 (or unset): the loss would be empty")


def layerwise_weights(settings: PretrainSettings, student_config, teacher_config) -> tuple[float, float]:
    """(hidden, attention) weights: as set, else 1 when the widths differ and 0 when they match."""
    default = 1.0 if student_config.hidden_size != teacher_config.hidden_size else 0.0
    return (default if settings.hidden_weight is None else settings.hidden_weight,
            default if settings.attention_weight is None else settings.attention_weight)


class Masker:
    """BERT's masking of a batch, by ``DataCollatorForLanguageModeling.torch_mask_tokens``:
    special tokens and padding are never masked; labels are :data:`IGNORED` where nothing is predicted."""

    def __init__(self, tokenizer, probability: float):
        self.collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=probability)
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)))

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = input_ids.cpu(), attention_mask.cpu()  # the collator draws on the CPU generator
        never = torch.isin(ids, self.special_ids) | (mask == 0)
        masked, labels = self.collator.torch_mask_tokens(ids.clone(), special_tokens_mask=never)
        return masked.to(input_ids.device), labels.to(input_ids.device)


@dataclass
class MaskedLMOutputs:
    """What the loss needs from one step: the masked inputs the teacher must see too, the labels,
    the student's encoder outputs and its MLM logits at the masked tokens (rows of ``labels != IGNORED``)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    labels: torch.Tensor
    encoder: object  # transformers' BaseModelOutput: last_hidden_state, hidden_states, attentions
    logits: torch.Tensor  # (masked tokens, vocab)

    @property
    def predicted(self) -> torch.Tensor:
        return self.labels != IGNORED


class MaskedLMModel(nn.Module):
    """An encoder and its MLM head, masking its own input: the module the training loop trains.

    ``encoder`` is a QA model's ``bert``; ``projection`` is the width projection layer-wise
    transfer trains alongside. With ``train_encoder=False`` the encoder runs without gradients and
    only the head learns (fitting a teacher's head).
    """

    def __init__(self, encoder: nn.Module, head: MaskedLMHead, masker: Masker, *, train_encoder: bool = True,
                 projection: nn.Module | None = None, hidden_states: bool = False, attentions: bool = False):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.projection = projection
        self.masker = masker
        self.train_encoder = train_encoder
        self.output_hidden_states = hidden_states
        self.output_attentions = attentions
        if not train_encoder:
            encoder.requires_grad_(False)

    def forward(self, input_ids, token_type_ids, attention_mask) -> MaskedLMOutputs:
        masked, labels = self.masker(input_ids, attention_mask)
        with torch.set_grad_enabled(self.train_encoder and torch.is_grad_enabled()):
            states = self.encoder(input_ids=masked, token_type_ids=token_type_ids, attention_mask=attention_mask,
                                  output_hidden_states=self.output_hidden_states, output_attentions=self.output_attentions)
            table = word_table(self.encoder)
        predicted = labels != IGNORED
        logits = self.head(states.last_hidden_state[predicted], table)
        return MaskedLMOutputs(masked, attention_mask, token_type_ids, labels, states, logits)


def masked_lm_loss(outputs: MaskedLMOutputs, batch=None) -> torch.Tensor:
    """Cross-entropy at the masked tokens (L_mlm); the loss that fits a teacher's head."""
    return F.cross_entropy(outputs.logits.float(), outputs.labels[outputs.predicted])


class PretrainObjective:
    """``loss_function(outputs, batch)`` for ``training.loop.train``; train ``objective.model``.

    The teacher (a QA model; its ``bert`` and its fitted ``teacher_head``) runs forward on the
    student's masked input at every step. Call :meth:`finish` after training: it switches student
    and teacher back to sdpa attention if attention transfer had switched them to eager.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, teacher_head: MaskedLMHead, student_head: MaskedLMHead,
                 settings: PretrainSettings, masker: Masker):
        check_pretrain_settings(settings)
        self.settings = settings
        self.student, self.teacher, self.teacher_head = student, teacher, teacher_head
        self.hidden_weight, self.attention_weight = layerwise_weights(settings, student.config, teacher.config)
        self.weights = {"soft": settings.soft_weight, "hard": settings.hard_weight, "cosine": settings.cosine_weight,
                        "hidden": self.hidden_weight, "attention": self.attention_weight}
        self.pairs = layer_pairs(student.config, teacher.config) if self.hidden_weight or self.attention_weight else []
        if (self.hidden_weight or self.attention_weight) and not self.pairs:
            raise ConfigError("layer-wise transfer: no student layer has a teacher layer to learn from")
        teacher.eval().requires_grad_(False)
        teacher_head.eval().requires_grad_(False)
        self._original_attention = None
        if self.attention_weight:  # sdpa returns no attention probabilities
            self._original_attention = student.config._attn_implementation
            student.set_attn_implementation("eager")
            teacher.set_attn_implementation("eager")
        projection = None
        if self.hidden_weight or settings.cosine_weight:
            projection = width_projection(student.config, teacher.config)
        if projection is not None:
            projection.to(next(student.parameters()).device)
        self.model = MaskedLMModel(student.bert, student_head, masker, projection=projection,
                                   hidden_states=bool(self.hidden_weight), attentions=bool(self.attention_weight))

    def finish(self) -> None:
        """Undo the eager-attention switch, so the saved student uses sdpa."""
        if self._original_attention is not None:
            self.student.set_attn_implementation(self._original_attention)
            self.teacher.set_attn_implementation(self._original_attention)
            self._original_attention = None

    def __call__(self, outputs: MaskedLMOutputs, batch=None) -> torch.Tensor:
        return sum(self.weights[name] * value for name, value in self.terms(outputs).items())

    def terms(self, outputs: MaskedLMOutputs) -> dict[str, torch.Tensor]:
        """The unweighted loss terms whose weight is positive, by name."""
        mask = outputs.attention_mask
        with torch.no_grad():
            teacher = self.teacher.bert(input_ids=outputs.input_ids, token_type_ids=outputs.token_type_ids,
                                        attention_mask=mask, output_hidden_states=bool(self.hidden_weight),
                                        output_attentions=bool(self.attention_weight))
        student = outputs.encoder
        predicted = outputs.predicted
        terms: dict[str, torch.Tensor] = {}
        if not predicted.any():  # nothing masked (possible in tiny batches only): the MLM terms are 0
            zero = student.last_hidden_state.sum() * 0.0
            terms.update({name: zero for name in ("soft", "hard") if self.weights[name]})
        else:
            if self.weights["soft"]:
                with torch.no_grad():
                    table = word_table(self.teacher.bert)
                    teacher_logits = self.teacher_head(teacher.last_hidden_state[predicted], table)
                terms["soft"] = distillation_kl(outputs.logits, teacher_logits, self.settings.temperature)
            if self.weights["hard"]:
                terms["hard"] = masked_lm_loss(outputs)
        projection = self.model.projection
        if self.weights["cosine"]:
            last = student.last_hidden_state if projection is None else projection(student.last_hidden_state)
            terms["cosine"] = cosine_loss(last, teacher.last_hidden_state, mask)
        if self.hidden_weight:
            terms["hidden"] = hidden_state_loss(student.hidden_states, teacher.hidden_states, mask, self.pairs, projection)
        if self.attention_weight:
            terms["attention"] = attention_map_loss(student.attentions, teacher.attentions, mask, self.pairs)
        return terms


@torch.no_grad()
def masked_lm_metrics(model: MaskedLMModel, features: Features, batch_size: int = 64, seed: int = 0) -> dict[str, float]:
    """Held-out masked-LM loss and accuracy, with the same masks at every call (seeded, global RNG restored)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss, correct, count = 0.0, 0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for indices in evaluation_batches(np.asarray(features.lengths), batch_size):
            batch = collate(features, indices).to(device)
            outputs = model(**batch.model_inputs())
            labels = outputs.labels[outputs.predicted]
            loss += float(F.cross_entropy(outputs.logits.float(), labels, reduction="sum"))
            correct += int((outputs.logits.argmax(-1) == labels).sum())
            count += len(labels)
    model.train(was_training)
    return {"mlm_loss": loss / max(count, 1), "mlm_accuracy": 100.0 * correct / max(count, 1), "masked_tokens": count}

"""Training speed of one distillation step: this engine against a 2020-style loop, same machine, one run.

The 2020 SigOpt DistilBERT-on-SQuAD-2.0 experiment trained the way Hugging Face's examples did
then, and that is what the "2020-style" loop here does:
* float32 throughout (no autocast),
* the teacher runs forward at every step to produce the soft targets,
* attention dropout 0.1, which in transformers means eager attention (the fused sdpa kernel is
  not used when attention probabilities are dropped out), for student and teacher,
* every window padded to ``max_seq_length``, batches drawn at random,
* a per-tensor (non-fused, non-foreach) AdamW loop.
This engine: teacher logits read from the cache (computed once, not timed: amortised over every
trial; the time it took is printed when it is computed here), bf16 autocast where the hardware
has it, sdpa attention (attention dropout 0), length-bucketed batches padded to a multiple of 8,
fused AdamW. Its step is the body of ``training.loop.train`` with ``DistillationObjective``.

Same student architecture (half the teacher's layers, all heads, seeded from the teacher), same
teacher, same batch size, same loss weights (soft 0.5, hard 0.5, T = 2). Reported per loop:
examples/s (the ratio is the headline), tokens/s (real and as computed, padding included), and
the achieved FLOP/s against what one large bf16 matmul reaches on the machine (measured) and
against ``--peak-tflops`` (a datasheet figure, if given), followed by a torch.profiler table of where the
time goes.

FLOPs are estimated, as usual for transformers, as 6 x non-embedding parameters x tokens for a
training step (2 forward + 4 backward per parameter and token) plus attention's two
(length x length) products, 4 x length² x attention width per layer and sequence forward, x3 for
training; a teacher forward counts 2 x parameters x tokens + 4 x length² x width per layer.
Tokens are the tokens *computed*, padding included, so the FLOP/s measures hardware use while
examples/s measures useful progress.

    python benchmarks/distill_speed.py --data ../shared/data/squad2/dev-v2.0.json \\
        [--teacher DIR] [--steps 30] [--batch-size 32] [--peak-tflops 989]

Without ``--teacher`` a tiny random teacher is used: a dry run that only checks the script.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
try:
    import paretodistill  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(REPO / "src"))

from paretodistill.config import DataSettings, DistillSettings, FeatureSettings, TrainSettings  # noqa: E402
from paretodistill.data.prepare import prepare_data  # noqa: E402
from paretodistill.distill.losses import hard_loss, soft_loss  # noqa: E402
from paretodistill.distill.objective import DistillationObjective  # noqa: E402
from paretodistill.distill.presets import tiny_teacher  # noqa: E402
from paretodistill.distill.run import teacher_tokenizer  # noqa: E402
from paretodistill.distill.teacher_cache import cached_teacher_logits  # noqa: E402
from paretodistill.hardware.device import (  # noqa: E402
    autocast_context,  # noqa: E402
    device_name,
    pick_device,
    supports_fast_bf16,
)
from paretodistill.models.loading import load_qa_model  # noqa: E402
from paretodistill.models.student import StudentArchitecture, build_student  # noqa: E402
from paretodistill.training.batching import Batch, collate, training_batches  # noqa: E402
from paretodistill.training.loop import build_optimizer  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad2" / "dev-v2.0.json"
SOFT, HARD, TEMPERATURE = 0.5, 0.5, 2.0


# ---------------------------------------------------------------- FLOP estimates
def measured_matmul_tflops(device: torch.device, bf16: bool, size: int = 2048, repeats: int = 20) -> float:
    """The machine's attainable dense rate: TFLOP/s of a large square matmul in bf16 (fp32 without bf16).

    A CPU's datasheet peak depends on clocks and on how its vector units execute bf16, neither of
    which is reported here; what one big GEMM reaches is the ceiling any training step can hope for.
    """
    dtype = torch.bfloat16 if bf16 else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e12


def non_embedding_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if ".embeddings." not in f".{name}")


def attention_width(model: torch.nn.Module) -> list[int]:
    """Per layer: heads x head size (the width of q, k and v)."""
    return [layer.attention.self.query.out_features for layer in model.bert.encoder.layer]


def forward_flops(model: torch.nn.Module, rows: int, width: int) -> float:
    """One forward over a (rows x width) padded batch."""
    tokens = rows * width
    attention = sum(4 * rows * width * width * d for d in attention_width(model))
    return 2 * non_embedding_parameters(model) * tokens + attention


# ---------------------------------------------------------------- the two steps
def pad_to(batch: Batch, width: int) -> Batch:
    """Pad a collated batch on the right to ``width`` tokens (padding to max_seq_length, as in 2020)."""
    extra = width - batch.input_ids.shape[1]
    if extra <= 0:
        return batch
    pad = lambda t: torch.nn.functional.pad(t, (0, extra))  # noqa: E731
    return Batch(batch.indices, pad(batch.input_ids), pad(batch.token_type_ids), pad(batch.attention_mask),
                 batch.start_positions, batch.end_positions)


class EngineLoop:
    """This engine's step: cached logits, bf16 autocast, sdpa, length-bucketed batches, fused AdamW."""

    name = "engine"

    def __init__(self, teacher, features, logits, arch, settings: TrainSettings, device, bf16: bool):
        self.student = build_student(teacher, arch).train()
        self.objective = DistillationObjective(self.student, DistillSettings(SOFT, HARD, TEMPERATURE), logits)
        self.optimizer = build_optimizer(self.objective.model, settings)
        self.features, self.device, self.bf16 = features, device, bf16
        self.max_grad_norm = settings.max_grad_norm
        epochs = itertools.count()
        self.batches = itertools.chain.from_iterable(
            training_batches(np.asarray(features.lengths), settings.train_batch_size, settings.seed, e) for e in epochs
        )

    def step(self) -> tuple[int, int, int, float]:
        """One training step; returns (examples, real tokens, computed tokens, estimated FLOPs)."""
        batch = collate(self.features, next(self.batches)).to(self.device)
        with autocast_context(self.device, self.bf16):
            outputs = self.objective.model(**batch.model_inputs())
            loss = self.objective(outputs, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        rows, width = batch.input_ids.shape
        return rows, int(batch.attention_mask.sum()), rows * width, 3 * forward_flops(self.student, rows, width)


class Loop2020:
    """The 2020 way: fp32, teacher forward every step, eager attention with dropout, max-length padding."""

    name = "2020-style"

    def __init__(self, teacher_dir, features, arch, settings: TrainSettings, device, max_seq_length: int):
        self.teacher = load_qa_model(teacher_dir, fast_attention=False).to(device).eval()
        self.student = build_student(self.teacher, arch).train()
        self.student.set_attn_implementation("eager")
        self.optimizer = torch.optim.AdamW(
            self.student.parameters(), lr=settings.learning_rate, betas=(settings.beta1, settings.beta2),
            eps=settings.epsilon, weight_decay=settings.weight_decay, foreach=False, fused=False,
        )
        self.features, self.device, self.width = features, device, max_seq_length
        self.max_grad_norm = settings.max_grad_norm
        rng = np.random.default_rng(settings.seed)
        size = settings.train_batch_size
        self.batches = (rng.choice(len(features), size, replace=False) for _ in itertools.count())

    def step(self) -> tuple[int, int, int, float]:
        batch = pad_to(collate(self.features, next(self.batches)), self.width).to(self.device)
        inputs = batch.model_inputs()
        with torch.no_grad():
            teacher = self.teacher(**inputs)
        outputs = self.student(**inputs)
        mask = batch.attention_mask
        loss = SOFT * soft_loss(outputs.start_logits, outputs.end_logits, teacher.start_logits, teacher.end_logits,
                                mask, TEMPERATURE)
        loss = loss + HARD * hard_loss(outputs.start_logits, outputs.end_logits, batch.start_positions,
                                       batch.end_positions, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        rows, width = batch.input_ids.shape
        flops = 3 * forward_flops(self.student, rows, width) + forward_flops(self.teacher, rows, width)
        return rows, int(mask.sum()), rows * width, flops


# ---------------------------------------------------------------- measuring
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(loop, steps: int, warmup: int, device: torch.device) -> dict:
    for _ in range(warmup):
        loop.step()
    synchronize(device)
    totals = np.zeros(4)
    started = time.perf_counter()
    for _ in range(steps):
        totals += loop.step()
    synchronize(device)
    seconds = time.perf_counter() - started
    examples, real_tokens, computed_tokens, flops = totals
    return {
        "loop": loop.name,
        "steps": steps,
        "seconds": seconds,
        "examples_per_second": examples / seconds,
        "real_tokens_per_second": real_tokens / seconds,
        "computed_tokens_per_second": computed_tokens / seconds,
        "padding_fraction": 1 - real_tokens / computed_tokens,
        "tflops_per_second": flops / seconds / 1e12,
    }


def profile(loop, steps: int, device: torch.device, rows: int) -> str:
    activities = [torch.profiler.ProfilerActivity.CPU]
    sort = "self_cpu_time_total"
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
        sort = "self_cuda_time_total"
    with torch.profiler.profile(activities=activities) as profiler:
        for _ in range(steps):
            loop.step()
        synchronize(device)
    return profiler.key_averages().table(sort_by=sort, row_limit=rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", help="teacher QA checkpoint folder (default: a tiny random teacher, a dry run)")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="SQuAD 2.0 file (its split's train articles)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per loop")
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--student-layers", type=int, help="default: half the teacher's layers")
    parser.add_argument("--max-seq-length", type=int, default=384)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--max-train-questions", type=int, default=3000, help="training questions to tokenize")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak (dense bf16) TFLOP/s, for utilisation")
    parser.add_argument("--profile-steps", type=int, default=3, help="0: no profiler table")
    parser.add_argument("--profile-rows", type=int, default=12)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--cache-dir")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = pick_device(args.device)
    bf16 = supports_fast_bf16(device)
    teacher_dir = Path(args.teacher) if args.teacher else tiny_teacher(args.cache_dir)
    if not args.teacher:
        print(f"no --teacher: dry run with a tiny random teacher ({teacher_dir})")
    tokenizer = teacher_tokenizer(teacher_dir)
    query = min(64, args.max_seq_length // 4)
    data_settings = DataSettings(
        split_file=args.data, max_eval_articles=1, max_train_questions=args.max_train_questions,
        features=FeatureSettings(args.max_seq_length, args.doc_stride, query),
    )
    data = prepare_data(data_settings, tokenizer, args.cache_dir, log=lambda m: None)
    features = data.train_features
    needed = (args.steps + args.warmup_steps + args.profile_steps) * args.batch_size
    print(f"{len(features)} training windows (median {int(np.median(features.lengths))} tokens, "
          f"max_seq_length {args.max_seq_length}); {needed} examples per loop needed")

    teacher = load_qa_model(teacher_dir).to(device).eval()
    started = time.perf_counter()
    logits = cached_teacher_logits(teacher, features, args.cache_dir, teacher_dir=teacher_dir,
                                   batch_size=64, bf16=bf16, log=lambda m: None)
    print(f"teacher logits ready in {time.perf_counter() - started:.1f}s (computed once per teacher and data, "
          "then memory-mapped by every trial; not part of the step time)")
    layers = args.student_layers or max(1, teacher.config.num_hidden_layers // 2)
    heads = teacher.config.num_attention_heads
    settings = TrainSettings(learning_rate=5e-5, train_batch_size=args.batch_size, seed=0)

    results, tables = [], {}
    gemm_tflops = measured_matmul_tflops(device, bf16)
    print(f"one large {'bf16' if bf16 else 'fp32'} matmul reaches {gemm_tflops:.3f} TFLOP/s on this machine")

    def run(loop) -> None:
        result = measure(loop, args.steps, args.warmup_steps, device)
        result["fraction_of_matmul_rate"] = result["tflops_per_second"] / gemm_tflops
        if args.peak_tflops:
            result["fraction_of_peak"] = result["tflops_per_second"] / args.peak_tflops
        results.append(result)
        if args.profile_steps:
            tables[loop.name] = profile(loop, args.profile_steps, device, args.profile_rows)

    engine = EngineLoop(teacher, features, logits,
                        StudentArchitecture(layers, heads, pruning_seed=42, attention_dropout=0.0, pruning="random"), settings,
                        device, bf16)
    del teacher
    run(engine)
    del engine
    if device.type == "cuda":
        torch.cuda.empty_cache()
    run(Loop2020(teacher_dir, features, StudentArchitecture(layers, heads, pruning_seed=42, attention_dropout=0.1, pruning="random"),
                 settings, device, args.max_seq_length))

    engine_result, old_result = results
    ratio = engine_result["examples_per_second"] / old_result["examples_per_second"]
    print(f"\ndevice: {device_name(device)}, bf16 autocast: {bf16}, student {layers} layers x {heads} heads, "
          f"batch {args.batch_size}, {args.steps} timed steps after {args.warmup_steps} warm-up steps")
    header = (f"{'loop':<12}{'examples/s':>12}{'real tok/s':>13}{'computed tok/s':>16}{'padding':>9}{'TFLOP/s':>10}"
              f"{'of matmul':>10}")
    print(header + (f"{'of peak':>9}" if args.peak_tflops else ""))
    for r in results:
        line = (f"{r['loop']:<12}{r['examples_per_second']:>12.1f}{r['real_tokens_per_second']:>13.0f}"
                f"{r['computed_tokens_per_second']:>16.0f}{r['padding_fraction']:>9.1%}{r['tflops_per_second']:>10.3f}"
                f"{r['fraction_of_matmul_rate']:>10.1%}")
        print(line + (f"{r['fraction_of_peak']:>9.1%}" if args.peak_tflops else ""))
    print(f"\nspeed-up (examples/s, engine / 2020-style): {ratio:.2f}x")
    for name, table in tables.items():
        print(f"\n--- where the time goes: {name} ({args.profile_steps} steps) ---\n{table}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"device": device_name(device), "bf16": bf16, "ratio": ratio, "matmul_tflops": gemm_tflops, "results": results,
             "args": vars(args), "student_layers": layers, "heads": heads}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Teacher fine-tuning throughput: the default recipe against paretodistill's fast path, one run.

Three ways to run the same MiniLM QA training step on the same real windows (the train articles of
the default dev split), each for ``--steps`` steps after ``--warmup`` untimed ones:

* ``default``: what a plain Hugging Face fine-tuning script does: float32, eager attention with
  attention dropout 0.1, every window padded to ``max_seq_length``, random batches, AdamW per tensor;
* ``bf16+sdpa``: bf16 autocast, sdpa attention with attention dropout 0, fused AdamW, still padded;
* ``paretodistill``: the above plus length-bucketed batches padded to a multiple of 8 (what
  ``paretodistill teacher`` runs).

Reports examples/s, real tokens/s and the achieved TFLOP/s (6 x non-embedding parameters x computed
tokens + attention's length² terms), against ``--peak-tflops`` if given.

    python benchmarks/teacher_speed.py --data ../shared/data/squad2/dev-v2.0.json --steps 12
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from paretodistill.config import DataSettings, FeatureSettings
from paretodistill.data.prepare import prepare_data
from paretodistill.distill.losses import hard_loss
from paretodistill.hardware.device import device_name, supports_fast_bf16
from paretodistill.models.loading import load_qa_model, load_tokenizer
from paretodistill.training.batching import collate, training_batches


def step_flops(model, computed_tokens: int, lengths: list[int]) -> float:
    config = model.config
    non_embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    attention = sum(4 * length**2 * config.hidden_size * config.num_hidden_layers for length in lengths)
    return 6 * non_embedding * computed_tokens + 3 * attention


def run_mode(mode: str, features, args, log) -> dict:
    fast = mode != "default"
    torch.manual_seed(0)
    model = load_qa_model(args.base, fast_attention=fast, **({} if fast else {"attention_probs_dropout_prob": 0.1}))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=fast, foreach=False if not fast else None)
    bf16 = fast and supports_fast_bf16(torch.device("cpu"))
    lengths = np.asarray(features.lengths)
    if mode == "paretodistill":
        batches = training_batches(lengths, args.batch_size, seed=0, epoch=0)
    else:
        order = np.random.default_rng(0).permutation(len(lengths))
        batches = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    examples = tokens = computed = 0
    flops = 0.0
    elapsed = 0.0
    for index in range(args.warmup + args.steps):
        batch = collate(features, batches[index])
        if mode != "paretodistill":  # pad every window to max_seq_length, as a plain script does
            pad = args.max_seq_length - batch.input_ids.shape[1]
            batch.input_ids = torch.nn.functional.pad(batch.input_ids, (0, pad))
            batch.token_type_ids = torch.nn.functional.pad(batch.token_type_ids, (0, pad))
            batch.attention_mask = torch.nn.functional.pad(batch.attention_mask, (0, pad))
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            outputs = model(**batch.model_inputs())
            loss = hard_loss(outputs.start_logits, outputs.end_logits, batch.start_positions,
                             batch.end_positions, batch.attention_mask)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= args.warmup:
            elapsed += time.perf_counter() - start
            examples += len(batch.indices)
            tokens += int(batch.attention_mask.sum())
            computed += batch.input_ids.numel()
            flops += step_flops(model, batch.input_ids.numel(), [batch.input_ids.shape[1]] * len(batch.indices))
    result = {"mode": mode, "examples_per_s": examples / elapsed, "real_tokens_per_s": tokens / elapsed,
              "padding_share": 1 - tokens / computed, "tflops": flops / elapsed / 1e12, "bf16": bf16}
    log(f"{mode}: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--base", default="minilm")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=384)
    parser.add_argument("--peak-tflops", type=float)
    parser.add_argument("--cache-dir")
    args = parser.parse_args()
    tokenizer = load_tokenizer(args.base)
    settings = DataSettings(split_file=args.data, features=FeatureSettings(max_seq_length=args.max_seq_length))
    data = prepare_data(settings, tokenizer, args.cache_dir, log=lambda m: None)
    results = [run_mode(mode, data.train_features, args, print) for mode in ("default", "bf16+sdpa", "paretodistill")]
    base = results[0]["examples_per_s"]
    print(f"\nmachine: {device_name(torch.device('cpu'))}; torch {torch.__version__}; batch {args.batch_size}; "
          f"{args.steps} timed steps after {args.warmup} warm-up; data: train articles of the default split")
    print("| mode | examples/s | speed-up | real tokens/s | padding | TFLOP/s |" + (" % of peak |" if args.peak_tflops else ""))
    print("|---|---|---|---|---|---|" + ("---|" if args.peak_tflops else ""))
    for r in results:
        row = (f"| {r['mode']} | {r['examples_per_s']:.1f} | {r['examples_per_s'] / base:.2f}x | "
               f"{r['real_tokens_per_s']:.0f} | {100 * r['padding_share']:.0f}% | {r['tflops']:.3f} |")
        if args.peak_tflops:
            row += f" {100 * r['tflops'] / args.peak_tflops:.1f}% |"
        print(row)


if __name__ == "__main__":
    main()

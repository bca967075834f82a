#!/usr/bin/env python3
"""torch_offload.py — a PyTorch program for liboffload's real-GPU validation (issue 8).

Three torch.nn modules of about --gib GiB each (stacks of Linear + GELU, random weights
from a fixed seed) run one after another, --iterations times, the way a diffusion
pipeline runs its text encoder, U-Net and VAE. tests/gpu/run.sh runs it three times:

  torch_offload.py --save ref.pt                  without liboffload: reference outputs
  OFFLOAD_MODE=record ... --save rec.pt           under liboffload, recording a config
  OFFLOAD_CONFIG=rec.conf OFFLOAD_BUDGET=3GiB ... --compare ref.pt
                                                  under liboffload with a budget smaller
                                                  than two modules: outputs must be
                                                  torch.equal to the reference

It prints one JSON line: timings, the allocator's view of memory, cudaMemGetInfo (which
liboffload answers with its budget), and "equal" when comparing. Exit status 1 when a
comparison fails.

Determinism: the weights are generated on the device from a seeded generator, cuBLAS
gets a fixed workspace and deterministic algorithms, TF32 is off. Nothing here depends
on device addresses, so the same program gives the same bits with or without
liboffload (whose pointers are stable but differ from cudaMalloc's).
"""
import argparse
import json
import os
import sys
import time

# Before torch initialises CUDA: a fixed cuBLAS workspace makes its results repeatable.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import torch  # noqa: E402  (after the environment it reads)


def build_modules(gib: float, width: int, device: str):
    """Three Sequential stacks of Linear(width, width) + GELU, ~gib GiB of fp32 each.

    Modules are built one after the other, so each module's weights are consecutive
    allocations: record mode sees three groups whose uses never overlap."""
    layer_bytes = width * width * 4
    layers = max(1, round(gib * (1 << 30) / layer_bytes))
    generator = torch.Generator(device=device).manual_seed(1234)
    modules = []
    for _ in range(3):
        stack = []
        for _ in range(layers):
            linear = torch.nn.Linear(width, width, device=device)
            with torch.no_grad():
                # Scaled so activations neither vanish nor blow up over many layers.
                bound = 1.7 / width**0.5
                linear.weight.uniform_(-bound, bound, generator=generator)
                linear.bias.uniform_(-0.01, 0.01, generator=generator)
            stack += [linear, torch.nn.GELU()]
        modules.append(torch.nn.Sequential(*stack).eval())
    return modules, layers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=2.0, help="size of each module")
    parser.add_argument("--width", type=int, default=8192, help="Linear width")
    parser.add_argument("--batch", type=int, default=64, help="rows of the input")
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--device", default="cuda",
                        help="cuda; cpu only checks this script without a GPU")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--save", metavar="FILE", help="write the outputs to FILE")
    mode.add_argument("--compare", metavar="FILE", help="check the outputs against FILE")
    args = parser.parse_args()

    device = args.device
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        print("torch_offload: CUDA is not available", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    start = time.monotonic()
    modules, layers = build_modules(args.gib, args.width, device)
    x0 = torch.randn(args.batch, args.width, device=device,
                     generator=torch.Generator(device=device).manual_seed(99))
    sync()
    build_s = time.monotonic() - start

    outputs, iteration_s = [], []
    with torch.inference_mode():
        for _ in range(args.iterations):
            t0 = time.monotonic()
            x = x0
            for module in modules:
                x = module(x)
            outputs.append(x.cpu())  # .cpu() synchronises
            iteration_s.append(time.monotonic() - t0)

    free, total = torch.cuda.mem_get_info() if cuda else (0, 0)
    result = {
        "layers_per_module": layers,
        "module_bytes": layers * (args.width * args.width + args.width) * 4,
        "iterations": args.iterations,
        "build_s": round(build_s, 3),
        "iteration_s": [round(s, 4) for s in iteration_s],
        "steady_iteration_s": round(sorted(iteration_s[1:] or iteration_s)[0], 4),
        "max_memory_allocated": torch.cuda.max_memory_allocated() if cuda else 0,
        "max_memory_reserved": torch.cuda.max_memory_reserved() if cuda else 0,
        "mem_get_info_free": free,
        "mem_get_info_total": total,
    }
    status = 0
    if args.save:
        torch.save(outputs, args.save)
    else:
        reference = torch.load(args.compare)
        equal = len(reference) == len(outputs) and all(
            torch.equal(a, b) for a, b in zip(reference, outputs))
        result["equal"] = equal
        if not equal:
            worst = max((a - b).abs().max().item() for a, b in zip(reference, outputs))
            result["max_abs_difference"] = worst
            status = 1
    print(json.dumps(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

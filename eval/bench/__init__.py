"""Benchmarks: each module runs ours and the anchor side by side in one run (`python -m distillgym.eval.bench.X`)."""

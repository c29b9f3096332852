"""Small helpers shared by the benchmarks: pinning to one core, timing, tables, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def pin_to_one_core(core: int | None) -> str:
    """Pin this process (and numpy's threads) to one CPU core; returns a description for the report."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned"


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Wall-clock seconds of `repeat` calls of fn."""
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def summary(times: list[float]) -> dict[str, float]:
    return {
        "n": len(times),
        "median_s": statistics.median(times),
        "mean_s": statistics.fmean(times),
        "max_s": max(times),
    }


def machine() -> dict[str, str]:
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": str(os.cpu_count())}


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def save_results(out: str | Path, data: dict[str, Any], plot_path: str | None = None,
                 draw: Callable[[Any, str], None] | None = None) -> None:
    """Write `data` as JSON to `out` and, with `plot_path`, `draw(data["results"], plot_path)`; print the paths."""
    print(f"wrote {write_json(out, data)}")
    if plot_path and draw is not None:
        draw(data["results"], plot_path)
        print(f"wrote {plot_path}")


def fmt_ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f}"


def finish_figure(fig: Any, axes: Any, title: str, path: Path) -> Path:
    """Title, grid and legend (first panel) of a benchmark's figure; saved to `path` (folders made) and closed."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

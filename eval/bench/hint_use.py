"""Does a model use its hint? Teacher-forced, no generation: the expert's reply at every step of held-out expert
episodes, scored under the plain prompt and under the teacher's prompt (the step's privileged info in context).

    python -m distillgym.eval.bench.hint_use --model runs/bench/teacher_view_household_action/action/model \\
        --env Household-v0 --env-kwarg max_steps=12 --episodes 32 --placement action

Per context: the mean negative log-likelihood per reply token, the share of reply tokens the model ranks first
(greedy next-token accuracy), and the share of replies whose every token it ranks first (the reply greedy decoding
writes). A model that reads its hint scores the expert's reply far better with it; one that ignores it scores the
same under both prompts. The first wrong token of some replies (`--show N`) says what the model gets wrong. Cheap
next to `teacher_view` (one forward per step, no environment play) and the measurement that says *why* a teacher
view shows no gain.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from distillgym.eval.bench.common import machine, markdown_table, write_json

CONTEXTS = ("plain", "privileged")


def hint_use(model: Any, tokenizer: Any, env_id: str, env_kwargs: dict[str, Any], episodes: int, *,
             placement: str = "end", history: int = 1, split: str = "test", show: int = 0) -> dict[str, Any]:
    """Score the expert's replies of `episodes` expert episodes (task indices 0..episodes-1 of `split`) under each
    context; returns {context: {nll, token_acc, exact, turns, reply_tokens}} and, with `show`, `errors`: the first
    wrong token of up to `show` replies per context (the text before it, the token wanted, the token ranked first)."""
    import torch

    from distillgym.agents.policies import ExpertAgent
    from distillgym.agents.prompts import PromptBuilder
    from distillgym.agents.rollout import collect
    from distillgym.envs.core.make import make_env
    from distillgym.envs.core.protocol import protocol_of
    from distillgym.trainers.core import demonstration_replies, step_privileged

    eps = collect(ExpertAgent(), env_id, episodes, split=split, num_envs=min(8, episodes), env_kwargs=env_kwargs,
                  progress=False)
    env = make_env(env_id, **env_kwargs)
    builder = PromptBuilder(tokenizer, protocol_of(env), history=history, privileged_at=placement)
    env.close()
    rows: dict[str, list[dict[str, float]]] = {c: [] for c in CONTEXTS}
    errors: dict[str, list[dict[str, str]]] = {c: [] for c in CONTEXTS}
    model.eval()
    for ep in eps:
        replies = demonstration_replies(tokenizer, ep.turns)
        for context in CONTEXTS:
            view = (lambda k, ep=ep: step_privileged(ep, k)) if context == "privileged" else None
            for prompt, (_, reply) in zip(builder.replay(ep.task, ep.turns, view, replies), replies, strict=True):
                with torch.no_grad():
                    logits = model(torch.tensor([prompt + reply])).logits[0, len(prompt) - 1 : -1].float()
                target = torch.tensor(reply)
                logp = torch.log_softmax(logits, -1).gather(1, target[:, None])[:, 0]
                hit = logits.argmax(-1) == target
                rows[context].append({"nll": float(-logp.mean()), "token_acc": float(hit.float().mean()),
                                      "exact": float(hit.all()), "n": float(len(reply))})
                if not hit.all() and len(errors[context]) < show:
                    i = int((~hit).nonzero()[0])
                    errors[context].append({"before": tokenizer.decode(reply[max(0, i - 12) : i]),
                                            "wanted": tokenizer.decode(reply[i : i + 1]),
                                            "ranked_first": tokenizer.decode([int(logits[i].argmax())])})
    out: dict[str, Any] = {}
    for context, rs in rows.items():
        out[context] = {"nll": statistics.fmean(r["nll"] for r in rs),
                        "token_acc": statistics.fmean(r["token_acc"] for r in rs),
                        "exact": statistics.fmean(r["exact"] for r in rs), "turns": len(rs),
                        "reply_tokens": statistics.fmean(r["n"] for r in rs)}
    if show:
        out["errors"] = errors
    return out


def main(argv: list[str] | None = None) -> None:
    import torch

    from distillgym.agents.models import load
    from distillgym.agents.prompts import PRIVILEGED_PLACES
    from distillgym.eval.bench.teacher_view import env_kwargs

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a model directory (e.g. a training run's model/)")
    p.add_argument("--env", required=True)
    p.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--max-steps", type=int, default=None, help="the env's max_steps (as the runs that trained it)")
    p.add_argument("--episodes", type=int, default=32)
    p.add_argument("--placement", default="end", choices=PRIVILEGED_PLACES, help="privileged_at of the prompt")
    p.add_argument("--history", type=int, default=1)
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--show", type=int, default=6, help="first wrong tokens to print per context")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON path (default: print only)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    kwargs = {k: v for k, v in env_kwargs(args).items() if v is not None}  # max_steps only when given
    model, tok = load(args.model)
    res = hint_use(model, tok, args.env, kwargs, args.episodes, placement=args.placement, history=args.history,
                   split=args.split, show=args.show)
    rows = [[c, res[c]["turns"], f"{res[c]['reply_tokens']:.0f}", f"{res[c]['nll']:.3f}",
             f"{100 * res[c]['token_acc']:.1f}", f"{100 * res[c]['exact']:.0f}"] for c in CONTEXTS]
    print(markdown_table(["context", "replies", "tokens / reply", "NLL / token", "token acc %", "exact %"], rows))
    for context, errs in res.get("errors", {}).items():
        for e in errs:
            print(f"{context}: ...{e['before']!r} wanted {e['wanted']!r}, ranked first {e['ranked_first']!r}")
    if args.out:
        write_json(Path(args.out), {"machine": machine(), "model": args.model, "env": args.env, "env_kwargs": kwargs,
                                    "placement": args.placement, "episodes": args.episodes, "split": args.split,
                                    "results": res})


if __name__ == "__main__":
    main()

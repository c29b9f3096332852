"""Loss functions against hand-computed values and finite differences."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

torch = pytest.importorskip("torch")

from distillgym.trainers import losses as L  # noqa: E402


@pytest.fixture(autouse=True)
def float64() -> Iterator[None]:
    """Exact arithmetic for these tests only (the default dtype is process-wide: restore it)."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_aggregations_by_hand() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 99.0, 99.0]])
    m = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert L.aggregate(x, m, "grpo").item() == pytest.approx((2.0 + 4.0) / 2)
    assert L.aggregate(x, m, "bnpo").item() == pytest.approx(10 / 4)
    assert L.aggregate(x, m, "dr_grpo").item() == pytest.approx(10 / 6)
    assert L.aggregate(x, m, "dr_grpo", max_len=5).item() == pytest.approx(10 / 10)
    assert L.aggregate(x, m, "dapo").item() == pytest.approx(10 / 4)
    assert L.aggregate(x, m, "dapo", num_tokens=8).item() == pytest.approx(10 / 8)
    with pytest.raises(ValueError, match="aggregation"):
        L.aggregate(x, m, "bogus")  # type: ignore[arg-type]


def test_clipped_policy_gradient_by_hand() -> None:
    logp = torch.log(torch.tensor([[1.5, 1.5, 0.5, 0.5]]))
    old = torch.zeros_like(logp)
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0]])
    loss, clipped = L.clipped_pg(logp, old, adv, clip_low=0.2, clip_high=0.2)
    assert loss.tolist()[0] == pytest.approx([-1.2, 1.5, -0.5, 0.8])
    assert clipped.tolist()[0] == [1.0, 0.0, 0.0, 1.0]
    # asymmetric clipping (DAPO's clip-higher): ratio 1.5 with clip_high 0.28 clips at 1.28
    loss, _ = L.clipped_pg(logp[:, :1], old[:, :1], torch.tensor([1.0]), clip_low=0.2, clip_high=0.28)
    assert loss.item() == pytest.approx(-1.28)


def test_kl_estimators_by_hand() -> None:
    logp, ref = torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.25]))
    assert L.kl_k1(logp, ref).item() == pytest.approx(math.log(2))
    assert L.kl_k3(logp, ref).item() == pytest.approx(0.5 - 1 + math.log(2))
    assert L.kl_k3(logp, logp).item() == 0.0


def test_generalized_jsd_by_hand() -> None:
    s, t = torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1])
    m = 0.5 * t + 0.5 * s
    expected = 0.5 * sum(t[i] * math.log(t[i] / m[i]) for i in range(2)) + 0.5 * sum(
        s[i] * math.log(s[i] / m[i]) for i in range(2)
    )
    got = L.generalized_jsd(s.log().view(1, 1, 2), t.log().view(1, 1, 2), beta=0.5)
    assert got.item() == pytest.approx(float(expected))
    # beta = 0 is forward KL(T || S), beta = 1 reverse KL(S || T), as in TRL
    fwd = sum(t[i] * math.log(t[i] / s[i]) for i in range(2))
    rev = sum(s[i] * math.log(s[i] / t[i]) for i in range(2))
    assert L.generalized_jsd(s.log().view(1, 1, 2), t.log().view(1, 1, 2), beta=0.0).item() == pytest.approx(float(fwd))
    assert L.generalized_jsd(s.log().view(1, 1, 2), t.log().view(1, 1, 2), beta=1.0).item() == pytest.approx(float(rev))
    assert L.kl_full(s.log().view(1, 1, 2), t.log().view(1, 1, 2)).item() == pytest.approx(float(rev))
    with pytest.raises(ValueError, match="jsd_beta"):
        L.generalized_jsd(s.log().view(1, 1, 2), t.log().view(1, 1, 2), beta=1.5)


# --- gradients: exact expectations over a 5-token vocabulary, checked by finite differences


TEACHER = torch.tensor([0.3, -1.0, 2.0, 0.1, -0.4], dtype=torch.float64)
THETA = torch.tensor([1.0, 0.2, -0.5, 0.7, 0.0], dtype=torch.float64)


def expected_loss(theta: torch.Tensor, per_token: object) -> torch.Tensor:
    """E_{y ~ sg pi_theta}[loss(y)], summed exactly over the vocabulary (what sampling estimates)."""
    logp = torch.log_softmax(theta, -1)
    old = logp.detach()
    teacher = torch.log_softmax(TEACHER, -1)
    return (old.exp() * per_token(logp, old, teacher)).sum()  # type: ignore[operator]


def numerical_grad(f: object, theta: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    g = torch.zeros_like(theta)
    for i in range(len(theta)):
        e = torch.zeros_like(theta)
        e[i] = h
        g[i] = (f(theta + e) - f(theta - e)) / (2 * h)  # type: ignore[operator]
    return g


def reverse_kl(theta: torch.Tensor) -> torch.Tensor:
    return L.kl_full(theta.view(1, 1, -1), TEACHER.view(1, 1, -1)).sum()


def forward_kl(theta: torch.Tensor) -> torch.Tensor:
    return L.kl_full(TEACHER.view(1, 1, -1), theta.view(1, 1, -1)).sum()


def autograd(per_token: object) -> torch.Tensor:
    theta = THETA.clone().requires_grad_(True)
    expected_loss(theta, per_token).backward()
    return theta.grad  # type: ignore[return-value]


def test_importance_weighted_k3_has_the_reverse_kl_gradient() -> None:
    g = autograd(lambda lp, old, t: L.iw_reverse_kl(lp, old, t))
    assert torch.allclose(g, numerical_grad(reverse_kl, THETA), atol=1e-7)


def test_plain_k3_has_the_forward_kl_gradient_not_the_reverse() -> None:
    g = autograd(lambda lp, old, t: L.kl_k3(lp, t))
    assert torch.allclose(g, numerical_grad(forward_kl, THETA), atol=1e-7)
    assert not torch.allclose(g, numerical_grad(reverse_kl, THETA), atol=1e-3)


def test_sampled_token_distillation_has_the_reverse_kl_gradient() -> None:
    g = autograd(lambda lp, old, t: L.sampled_token_distill(lp, t))
    assert torch.allclose(g, numerical_grad(reverse_kl, THETA), atol=1e-7)


def test_jsd_gradient_matches_finite_differences() -> None:
    theta = THETA.clone().requires_grad_(True)
    L.generalized_jsd(theta.view(1, 1, -1), TEACHER.view(1, 1, -1), beta=0.3).sum().backward()

    def f(x: torch.Tensor) -> torch.Tensor:
        return L.generalized_jsd(x.view(1, 1, -1), TEACHER.view(1, 1, -1), beta=0.3).sum()

    assert torch.allclose(theta.grad, numerical_grad(f, THETA), atol=1e-7)


def test_masked_tokens_get_no_gradient() -> None:
    logp = torch.tensor([[-0.5, -1.0, -2.0]], requires_grad=True)
    old = torch.tensor([[-0.6, -1.0, -50.0]])  # garbage where masked: huge ratio, huge KL
    teacher = torch.tensor([[-0.4, -3.0, 30.0]])
    mask = torch.tensor([[1, 1, 0]])
    pg, _ = L.clipped_pg(logp, old, torch.tensor([1.0]))
    total = L.aggregate(pg, mask) + L.aggregate(L.iw_reverse_kl(logp, old, teacher), mask, "grpo")
    total.backward()
    assert torch.isfinite(total)
    assert logp.grad[0, 2].item() == 0.0 and logp.grad[0, :2].abs().sum() > 0

"""Learning without backpropagation on digits: STDP winner-take-all features, three-factor rules."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import load_digits
from ..encoding import rate
from ..spikes import bernoulli
from ..learning.local import STDPParams, WTALIF, present_stdp, three_factor_update
from .config import integer, nested, one_of, real, validate
from .runner import Results, Runner, recipe


@dataclass(frozen=True)
class STDPDigits:
    """Unsupervised STDP in a winner-take-all LIF layer; neurons are labelled after training."""

    neurons: int = 200
    T: int = 25
    input_rate: float = 0.3  # firing probability per step of a white (x = 1) pixel
    beta: float = 0.8
    threshold: float = 1.0
    theta_plus: float = 0.1  # homeostatic threshold increase per output spike
    epochs: int = 4
    batch_size: int = 16
    stdp: STDPParams = STDPParams(eta_plus=0.05, eta_minus=0.0, tau_pre=5.0, tau_post=5.0,
                                  multiplicative=True, x_target=0.6)
    seed: int = 0
    CHECKS = {"neurons": integer(), "T": integer(), "input_rate": real(low=0.0, high=1.0, low_open=True),
              "beta": real(low=0.0, high=1.0), "threshold": real(low=0.0, low_open=True), "theta_plus": real(low=0.0),
              "epochs": integer(), "batch_size": integer(), "stdp": nested(STDPParams), "seed": integer(0)}

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> STDPDigits:
        """40 neurons, 10 steps per image, one epoch."""
        return cls(**{"neurons": 40, "T": 10, "epochs": 1, **changes})


@recipe(STDPDigits)
def run_stdp_digits(cfg: STDPDigits, runner: Runner) -> Results:
    """Train, label each neuron with the class it fires most for, classify test images by vote."""
    data = load_digits()
    g = torch.Generator().manual_seed(cfg.seed)

    def fit(layer: WTALIF) -> list[float]:
        for _ in range(cfg.epochs):
            for idx in torch.randperm(len(data.x_train), generator=g).split(cfg.batch_size):
                present_stdp(layer, data.x_train[idx], cfg.T, cfg.input_rate, g, cfg.stdp, cfg.theta_plus)
        return []

    layer = runner.train("stdp", lambda: WTALIF(torch.rand(cfg.neurons, 64, generator=g) * 0.3, cfg.beta,
                                                cfg.threshold), fit, seed=cfg.seed).model
    counts = lambda x: torch.cat([present_stdp(layer, xb, cfg.T, cfg.input_rate, g)  # noqa: E731
                                  for xb in x.split(256)])
    train_counts = counts(data.x_train)
    per_class = torch.stack([train_counts[data.y_train == c].mean(0) for c in range(10)])
    labels = per_class.argmax(0)
    test_counts = counts(data.x_test)
    votes = torch.stack([test_counts[:, labels == c].mean(1) if (labels == c).any()
                         else torch.zeros(len(test_counts)) for c in range(10)], 1)
    runner.emit({"model": f"STDP WTA ({cfg.neurons} neurons)",
                 "label_assignment_accuracy": (votes.argmax(1) == data.y_test).float().mean().item()})
    return runner.results(weights=layer.weight, labels=labels)


@dataclass(frozen=True)
class ThreeFactorDigits:
    """Probabilistic spiking neurons (eq. 5) over rate-coded digits, trained by a three-factor rule.

    ``mode="teacher"``: the teacher forces the output spikes (the true class's neuron fires at
    every step, the others stay silent) and the modulator is 1: the rule is then the gradient of
    the log-likelihood of the forced spikes. ``mode="bandit"``: no teacher; the neurons spike
    freely, the action is the neuron with most spikes, and one global reward (1 if the action is
    the label) minus a running-mean baseline modulates every synapse.
    """

    mode: str = "teacher"
    T: int = 8
    epochs: int = 10
    batch_size: int = 16
    eta: float = 0.05
    baseline_decay: float = 0.99
    seed: int = 0
    CHECKS = {"mode": one_of(("teacher", "bandit")), "T": integer(), "epochs": integer(), "batch_size": integer(),
              "eta": real(low=0.0, low_open=True), "baseline_decay": real(low=0.0, high=1.0), "seed": integer(0)}

    __post_init__ = validate

    @classmethod
    def quick(cls, **changes) -> ThreeFactorDigits:
        """The teacher-forced rule for one epoch."""
        return cls(**{"epochs": 1, **changes})


def three_factor_run(w, x, y, cfg: ThreeFactorDigits, generator, baseline: float, learn: bool):
    """One batch: T steps of Bernoulli neurons; returns (w, spike counts [B, 10], rewards [B])."""
    s_in = rate(x, cfg.T)  # [T, B, 65] with a constant bias input
    spikes = [bernoulli(s_pre @ w.T, threshold=0.0, generator=generator) for s_pre in s_in]
    counts = torch.stack(spikes).sum(0)
    noise = torch.rand(counts.shape, generator=generator) * 1e-3  # random tie-break
    action = (counts + noise).argmax(1)
    reward = (action == y).float()
    if learn:
        forced = torch.nn.functional.one_hot(y, 10).float()
        m = 1.0 if cfg.mode == "teacher" else reward - baseline
        for s_pre, s in zip(s_in, spikes):
            s = forced if cfg.mode == "teacher" else s
            w = three_factor_update(w, s, torch.sigmoid(s_pre @ w.T), s_pre, m, cfg.eta / len(x))
    return w, counts, reward


@recipe(ThreeFactorDigits)
def run_three_factor_digits(cfg: ThreeFactorDigits, runner: Runner) -> Results:
    """Train on the digits training split; report test accuracy and the training reward curve."""
    data = load_digits()
    bias = lambda x: torch.cat([x, torch.ones(len(x), 1)], 1)  # noqa: E731
    g = torch.Generator().manual_seed(cfg.seed)
    w = torch.zeros(10, 65)
    baseline, curve = 0.0, []
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(data.x_train), generator=g).split(cfg.batch_size):
            w, _, reward = three_factor_run(w, bias(data.x_train[idx]), data.y_train[idx], cfg, g, baseline, True)
            curve.append(reward.mean().item())
            baseline = cfg.baseline_decay * baseline + (1 - cfg.baseline_decay) * curve[-1]
    _, _, reward = three_factor_run(w, bias(data.x_test), data.y_test, cfg, g, baseline, False)
    runner.emit({"model": f"three-factor ({cfg.mode})", "test_accuracy": reward.mean().item(),
                 "final_reward": curve[-1]})
    return runner.results(reward_curve=curve, weights=w)

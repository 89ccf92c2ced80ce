"""Checks shared by the mixer tests (imported as a sibling module: tests/ has no packages)."""

import torch


def random_grads(out, inputs, seed=1):
    """Gradients of a random projection of the outputs (so every output element matters)."""
    g = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in out)
    return torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)


def step_outputs(mixer, x, state=None):
    """Run ``mixer.step`` over the tokens of x [B, L, D] from ``state``: (outputs [B, L, D], last state)."""
    ys = []
    for x_t in x.unbind(1):
        y, state = mixer.step(x_t, state)
        ys.append(y)
    return torch.stack(ys, 1), state


def fired(mixer, x):
    """(mixer(x), the spikes its readout neuron fired on the way): the output of ``mixer.fire``."""
    seen = []
    handle = mixer.fire.register_forward_hook(lambda m, i, out: seen.append(out[0] if isinstance(out, tuple) else out))
    try:
        y = mixer(x)
    finally:
        handle.remove()
    return y, seen[0]

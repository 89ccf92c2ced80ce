"""ListOps (Long Range Arena, after Nangia & Bowman 2018): nested list operations on digits, eq. (76).

An expression is a digit 0-9 or ``[OP a_1 ... a_k ]`` with 2 <= k <= max_args arguments, each an
expression; OP is MAX, MIN, MED (``int(median)``: an even count averages the two middle values,
then truncates) or SM (sum mod 10). Written in LRA's tokens, space separated, without the
``( )`` LRA's files wrap around every pair and its tokenizer drops:
``[MAX 2 9 [MIN 4 7 ] 0 ]`` -> 9. Generation follows LRA's ``generate_tree``: the root has depth 1;
a node above ``max_depth`` is an operator with probability 1/4, else a uniform digit; a node at
``max_depth`` is a digit; expressions whose token count is outside [min_length, max_length] are
rejected and repeats are dropped (LRA keeps a set), so train and test never share an expression.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import _checks
from .digits import Split

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
PAD = "<pad>"
VOCAB = (PAD, *map(str, range(10)), *OPERATORS, END)  # token id = position; the pad id is 0
TOKEN_IDS = {token: i for i, token in enumerate(VOCAB)}
OPERATOR_P = 0.25  # LRA's VALUE_P: a node is an operator when a uniform draw is <= it
MAX_MISSES = 20_000  # draws in a row without a new expression before generate gives up

_APPLY = {"[MIN": np.min, "[MAX": np.max, "[MED": lambda v: int(np.median(v)), "[SM": lambda v: np.sum(v) % 10}


def _tree(rng: np.random.Generator, depth: int, max_depth: int, max_args: int) -> tuple[list[str], int]:
    """One random expression as (tokens, value), LRA's generate_tree with the value computed bottom-up."""
    if depth >= max_depth or rng.random() > OPERATOR_P:
        digit = int(rng.integers(10))
        return [str(digit)], digit
    children = [_tree(rng, depth + 1, max_depth, max_args) for _ in range(int(rng.integers(2, max_args + 1)))]
    op = OPERATORS[int(rng.integers(len(OPERATORS)))]
    tokens = [op, *(t for child, _ in children for t in child), END]
    return tokens, int(_APPLY[op]([value for _, value in children]))


def generate(n: int, max_depth: int = 4, max_args: int = 5, min_length: int = 4, max_length: int = 128,
             seed: int = 0) -> tuple[list[str], list[int]]:
    """``n`` distinct expressions with min_length <= tokens <= max_length and their values.

    Deterministic in ``seed`` (a numpy Generator). LRA's long variant is max_depth=10,
    max_args=10, min_length=501, max_length=1999 (its bounds are strict: 500 < tokens < 2000).
    """
    _checks.positive_int("n", n)
    _checks.positive_int("max_depth", max_depth, low=2)
    _checks.positive_int("max_args", max_args, low=2)
    _checks.positive_int("min_length", min_length)
    _checks.positive_int("max_length", max_length, low=min_length)
    if min_length > 1 + (max_args + 1) * ((max_args ** (max_depth - 1) - 1) // (max_args - 1)):
        raise ValueError(f"min_length={min_length} exceeds the longest expression of depth {max_depth} "
                         f"with {max_args} arguments")
    rng = np.random.default_rng(seed)
    found: dict[str, int] = {}
    misses = 0
    while misses < MAX_MISSES:
        tokens, value = _tree(rng, 1, max_depth, max_args)
        text = " ".join(tokens)
        if not min_length <= len(tokens) <= max_length or text in found:
            misses += 1
            continue
        found[text], misses = value, 0
        if len(found) == n:
            return list(found), list(found.values())
    raise ValueError(f"found only {len(found)} of n={n} distinct expressions within the length bounds "
                     f"({MAX_MISSES} draws in a row found none new); widen max_depth, max_args or the lengths, "
                     "or ask for fewer")


def evaluate(expression: str) -> int:
    """The value of an expression, by a stack parse of its tokens (independent of :func:`generate`)."""
    stack: list[list] = [[]]
    for token in expression.split():
        if token in OPERATORS:
            stack.append([token])
        elif token == END:
            if len(stack) < 2 or len(stack[-1]) < 3:
                raise ValueError(f"expression has a ']' without an open operator and two arguments: {expression!r}")
            op, *args = stack.pop()
            stack[-1].append(_operate(op, args))
        elif token.isdigit() and len(token) == 1:
            stack[-1].append(int(token))
        else:
            raise ValueError(f"expression has an unknown token {token!r}; tokens are {VOCAB[1:]}")
    if len(stack) != 1 or len(stack[0]) != 1:
        raise ValueError(f"expression must be one complete expression, got {expression!r}")
    return stack[0][0]


def _operate(op: str, args: list[int]) -> int:
    if op == "[MIN":
        return min(args)
    if op == "[MAX":
        return max(args)
    if op == "[SM":
        return sum(args) % 10
    ordered, mid = sorted(args), len(args) // 2
    return ordered[mid] if len(args) % 2 else (ordered[mid - 1] + ordered[mid]) // 2


def tokenize(expressions: list[str], length: int | None = None) -> torch.Tensor:
    """Token ids [B, L] (int64), right-padded with the pad id 0 to ``length`` (default: the longest)."""
    if isinstance(expressions, str) or not expressions:
        raise TypeError("expressions must be a non-empty list of strings")
    rows = []
    for e in expressions:
        tokens = e.split()
        if unknown := [t for t in tokens if t not in TOKEN_IDS or t == PAD]:
            raise ValueError(f"expressions hold unknown tokens {unknown}; tokens are {VOCAB[1:]}")
        rows.append([TOKEN_IDS[t] for t in tokens])
    longest = max(map(len, rows))
    length = longest if length is None else _checks.positive_int("length", length, low=longest)
    ids = torch.zeros(len(rows), length, dtype=torch.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
    return ids


def load_listops(n_train: int = 4000, n_test: int = 1000, max_depth: int = 4, max_args: int = 5,
                 min_length: int = 4, max_length: int = 128, seed: int = 0) -> Split:
    """A short ListOps: n_train + n_test distinct expressions (:func:`generate`) as ids [N, L]
    padded to the longest (L <= max_length; :func:`tokenize`) and values [N] (10 classes)."""
    _checks.positive_int("n_train", n_train)
    _checks.positive_int("n_test", n_test)
    expressions, values = generate(n_train + n_test, max_depth, max_args, min_length, max_length, seed)
    ids, y = tokenize(expressions), torch.tensor(values, dtype=torch.int64)
    return Split(ids[:n_train], y[:n_train], ids[n_train:], y[n_train:])


def majority_accuracy(y_train: torch.Tensor, y_test: torch.Tensor) -> float:
    """Test accuracy of always answering the most frequent training label."""
    return (y_test == torch.bincount(y_train, minlength=10).argmax()).float().mean().item()

"""Implicit-feedback matrix factorisation: iALS (Hu, Koren & Volinsky, 2008).

Every observed (user, item) pair is a positive with confidence 1 + alpha, every other pair
a zero with confidence 1; user and item factors are solved for in turn. Each half-step
solves one k x k system per user (or item) with a few conjugate-gradient steps warm-started
from the previous factors (Takács, Pilászy & Tikk, 2011), vectorised over all rows at once
with two sparse kernels: the per-interaction dot products are a sampled dense-dense product
(SDDMM) on the interaction matrix's pattern, and summing them back is a sparse-dense product.
The work is O(interactions x k) per step, no per-user k x k matrix is ever built, and it runs
on a CPU or a GPU (cuSPARSE). On ML-100K this was 15-30x faster than gathers + index_add.

Why iALS: each half-step is a least-squares solve (no learning rate, no negative
sampling to tune), a fixed seed gives the same model, and it trains ML-100K in seconds on
two CPU cores. Its held-out numbers against popularity are in the model's metadata.
"""

from __future__ import annotations

import warnings

import torch

from .recipe import IALSConfig


def fit(
    users: torch.Tensor,
    items: torch.Tensor,
    n_users: int,
    n_items: int,
    config: IALSConfig,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """User and item factors (fp32, on `device`) for unique (user, item) index pairs."""
    generator = torch.Generator().manual_seed(config.seed)
    # Initialised on the CPU so that the same seed gives the same model on any device.
    x = (torch.randn(n_users, config.factors, generator=generator) * 0.01).to(device)
    y = (torch.randn(n_items, config.factors, generator=generator) * 0.01).to(device)
    users, items = users.to(device), items.to(device)
    by_user = _pattern(users, items, (n_users, n_items))
    by_item = _pattern(items, users, (n_items, n_users))
    user_has = torch.bincount(users, minlength=n_users) > 0
    item_has = torch.bincount(items, minlength=n_items) > 0
    for _ in range(config.iterations):
        x = _solve(x, y, by_user, config)
        x[~user_has] = 0
        y = _solve(y, x, by_item, config)
        y[~item_has] = 0  # no interactions, nothing learnt: no direction either
    return x, y


def regularised_gram(factors: torch.Tensor, regularization: float) -> torch.Tensor:
    """FᵀF + λI, the part of every row's system shared by all rows."""
    k = factors.shape[1]
    return factors.T @ factors + regularization * torch.eye(k, device=factors.device, dtype=factors.dtype)


def fold_in(liked: list[torch.Tensor], gram: torch.Tensor, alpha: float) -> torch.Tensor:
    """Exact user vectors for new users from the factor rows of the items each liked (one
    k x k solve per user): the equation training solves for a known user, with the item
    factors fixed. `gram` is regularised_gram(item factors)."""
    systems = torch.stack([gram + alpha * rows.T @ rows for rows in liked])
    targets = torch.stack([(1 + alpha) * rows.sum(0) for rows in liked])
    return torch.linalg.solve(systems, targets)


def _pattern(rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The 0/1 CSR matrix of unique (row, col) pairs."""
    order = torch.argsort(rows * shape[1] + cols)
    crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=rows.device)
    crow[1:] = torch.bincount(rows, minlength=shape[0]).cumsum(0)
    values = torch.ones(len(rows), device=rows.device)
    # torch warns that CSR support as a whole is beta; the two kernels used here are not new.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols[order], values, shape, check_invariants=False)


def _solve(
    start: torch.Tensor, other: torch.Tensor, pattern: torch.Tensor, config: IALSConfig
) -> torch.Tensor:
    """A few CG steps on (OᵀO + λI + alpha·O_rᵀO_r) x_r = (1 + alpha)·O_rᵀ1 for every row r,
    where O_r are the factors of the row's interactions (the pattern's columns)."""
    gram = regularised_gram(other, config.regularization)
    target = (1 + config.alpha) * (pattern @ other)
    other_t = other.T  # a column-major view: what the CPU SDDMM kernel reads fastest

    def apply(v: torch.Tensor) -> torch.Tensor:
        # alpha · (v_r · o_c) on each interaction (r, c), then summed back as Σ_c w_rc o_c
        weights = torch.sparse.sampled_addmm(pattern, v, other_t, beta=0.0, alpha=config.alpha)
        return v @ gram + weights @ other

    x = start.clone()
    residual = target - apply(x)
    direction = residual.clone()
    norm = (residual * residual).sum(1, keepdim=True)
    for _ in range(config.cg_steps):
        step_image = apply(direction)
        step = norm / (direction * step_image).sum(1, keepdim=True).clamp_min(1e-20)
        x += step * direction
        residual -= step * step_image
        new_norm = (residual * residual).sum(1, keepdim=True)
        direction = residual + (new_norm / norm.clamp_min(1e-20)) * direction
        norm = new_norm
    return x

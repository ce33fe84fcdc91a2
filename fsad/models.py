"""The paper's few-shot classifier heads and their losses.

Both heads read residual maps ``r = f - m*`` (Eq. 2) of shape ``(N, D, h, w)``: ``D``
feature channels on an ``h x w`` patch grid (both taken from the tensors, so any backbone
works). Architectures follow the authors' code (notes/official-implementation.md):

- :class:`ContrastiveEncoder` (section 3.6): 1x1 conv ``D -> 256`` + BN + ReLU, 1x1 conv
  ``256 -> 128`` + BN + ReLU, flatten ``128 * h * w -> 128`` + ReLU, L2-normalised. Logits
  are ``q . k / 0.07`` and the loss is InfoNCE (Eq. 3).
- :class:`RelationNet` (the vanilla baseline, section 3.3 and Appendix B): support and query
  maps concatenated on channels, 1x1 conv ``2D -> 512`` + BN + ReLU, 1x1 conv ``512 -> 128``
  + BN + ReLU, ``Linear(128 * h * w -> 128)`` + BN1d + ReLU, ``Linear(128 -> 1)``; trained
  with a weighted BCE (positive pairs weighted ``C - 1``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TEMPERATURE = 0.07  # tau of InfoNCE (Eq. 3), as in MoCo


def scramble_layout(r: torch.Tensor) -> torch.Tensor:
    """Reproduce the authors' unpermuted reshape (their bug; ``code_bugs`` option only).

    Their features are stored patch-major ``(N, h*w, D)`` and reshaped straight to
    ``(N, D, h, w)`` without a permute, so each "channel" mixes patches and channels.

    Args:
        r: residual maps ``(N, D, h, w)`` in the correct layout.

    Returns:
        ``(N, D, h, w)``: the same numbers in the scrambled layout.
    """
    n, d, h, w = r.shape
    return r.permute(0, 2, 3, 1).reshape(n, d, h, w)


class _InPlaceGradLinear(torch.autograd.Function):
    """``x W^T + b`` whose weight gradient is accumulated in place into ``W.grad``.

    Autograd would allocate a fresh ``(out, in)`` gradient per backward pass: for the
    encoder's ``128 x (128 h w)`` head (12.8 M weights at 28 x 28) that allocation alone costs
    more than the step's arithmetic on a CPU. Same numbers, no allocation; used only by
    fine-tuning (batch-1 steps), never under ``torch.func`` (MAML keeps plain autograd).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.weight = weight
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (x,) = ctx.saved_tensors
        weight = ctx.weight
        gx = g @ weight if ctx.needs_input_grad[0] else None
        if ctx.needs_input_grad[1]:
            if weight.grad is None:
                weight.grad = torch.zeros_like(weight)
            weight.grad.addmm_(g.T, x)  # dL/dW += g^T x, in place
        gb = g.sum(0) if ctx.needs_input_grad[2] else None
        return gx, None, gb


class ContrastiveEncoder(nn.Module):
    """The contrastive classifier's encoder: residual map -> unit-norm embedding.

    Args:
        in_channels: ``D``, channels of the residual maps.
        grid: ``(h, w)`` patch grid of the residual maps.
        hidden: channels of the first 1x1 conv (256 in the paper).
        channels: channels of the second 1x1 conv (128).
        embed_dim: embedding size (128).
        scrambled: apply :func:`scramble_layout` to the input first (authors' bug).
    """

    def __init__(
        self,
        in_channels: int,
        grid: tuple[int, int],
        hidden: int = 256,
        channels: int = 128,
        embed_dim: int = 128,
        scrambled: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.grid = tuple(grid)
        self.scrambled = scrambled
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Linear(channels * self.grid[0] * self.grid[1], embed_dim), nn.ReLU(inplace=True)
        )
        # set by fine-tuning: accumulate the head's weight gradient in place (see
        # _InPlaceGradLinear); callers then zero gradients with set_to_none=False
        self.inplace_head_grad = False

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Embed residual maps.

        Args:
            r: ``(N, D, h, w)`` residual (or raw feature) maps.

        Returns:
            ``(N, embed_dim)`` L2-normalised embeddings.
        """
        _check_maps(r, self.in_channels, self.grid)
        if self.scrambled:
            r = scramble_layout(r)
        h = self.convs(r).flatten(1)
        lin = self.head[0]
        if self.inplace_head_grad and torch.is_grad_enabled() and lin.weight.requires_grad:
            z = _InPlaceGradLinear.apply(h, lin.weight, lin.bias)
        else:
            z = lin(h)
        return F.normalize(F.relu(z), dim=1)


def contrastive_logits(
    q: torch.Tensor, k: torch.Tensor, temperature: float = TEMPERATURE
) -> torch.Tensor:
    """InfoNCE logits ``q . k / tau`` (Eq. 3) of queries against per-class keys.

    Args:
        q: query embeddings ``(Q, E)``.
        k: keys ``(C, E)`` shared by all queries, or ``(G, C, E)``: G groups of one key
            per class, every query scored against every group.

    Returns:
        ``(Q, C)`` for 2-D keys, ``(G * Q, C)`` (group-major) for 3-D keys.
    """
    if k.dim() == 2:
        return q @ k.T / temperature
    return torch.einsum("qe,gce->gqc", q, k).reshape(-1, k.shape[1]) / temperature


def info_nce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """InfoNCE (Eq. 3): cross-entropy of the positive key among all keys.

    Args:
        logits: ``(B, C)`` from :func:`contrastive_logits`.
        targets: ``(B,)`` int64, index of the positive key.

    Returns:
        scalar mean loss; its minimum (0) is approached when every query is far closer to its
        positive key than to the negatives.
    """
    return F.cross_entropy(logits, targets)


class RelationNet(nn.Module):
    """The vanilla baseline: a relation score for (support map, query map) pairs.

    The first 1x1 conv acts on the channel concatenation ``[s, q]`` (``2D`` channels). A 1x1
    conv is linear, so ``W [s; q] + b = W_s s + W_q q + b``: the module stores the two
    halves separately and forms pairs after the first conv, which gives the same function
    while running the first conv once per map instead of once per pair.

    Args:
        in_channels: ``D`` (each side; the concatenation has ``2D``).
        grid: ``(h, w)`` patch grid.
        hidden: channels of the first conv (512).
        channels: channels of the second conv (128).
        embed_dim: width of the hidden linear layer (128).
        scrambled: apply :func:`scramble_layout` to inputs first (authors' bug).
    """

    def __init__(
        self,
        in_channels: int,
        grid: tuple[int, int],
        hidden: int = 512,
        channels: int = 128,
        embed_dim: int = 128,
        scrambled: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.grid = tuple(grid)
        self.scrambled = scrambled
        self.conv_support = nn.Conv2d(in_channels, hidden, kernel_size=1)  # W_s and the bias
        self.conv_query = nn.Conv2d(in_channels, hidden, kernel_size=1, bias=False)  # W_q
        self.body = nn.Sequential(
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Linear(channels * self.grid[0] * self.grid[1], embed_dim),
            nn.BatchNorm1d(embed_dim),
            nn.ReLU(inplace=True),
            nn.Linear(embed_dim, 1),
        )

    def _prep(self, r: torch.Tensor) -> torch.Tensor:
        _check_maps(r, self.in_channels, self.grid)
        return scramble_layout(r) if self.scrambled else r

    def forward(
        self,
        support: torch.Tensor,
        query: torch.Tensor,
        pairs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Relation logits of (support, query) pairs.

        Args:
            support: ``(S, D, h, w)`` support maps.
            query: ``(Q, D, h, w)`` query maps.
            pairs: ``(P, 2)`` int64 rows ``(support index, query index)``; when None,
                ``support`` and ``query`` are paired row by row (``S == Q``).

        Returns:
            ``(P,)`` logits; ``sigmoid`` gives the relation score in ``(0, 1)``.
        """
        a = self.conv_support(self._prep(support))
        b = self.conv_query(self._prep(query))
        x = a + b if pairs is None else a[pairs[:, 0]] + b[pairs[:, 1]]
        return self.head(self.body(x).flatten(1)).squeeze(1)


def weighted_bce(logits: torch.Tensor, targets: torch.Tensor, n_classes: int) -> torch.Tensor:
    """The baseline's weighted binary cross-entropy (Appendix A/B).

    Each query meets one positive and ``C - 1`` negative supports, so positive pairs are
    weighted ``C - 1`` and negatives 1; the mean is over pairs (as ``nn.BCELoss(weight=)``).

    Args:
        logits: ``(P,)`` relation logits.
        targets: ``(P,)`` 1.0 for same-class pairs, 0.0 otherwise.
        n_classes: ``C``, classes per episode.

    Returns:
        scalar loss.
    """
    targets = targets.to(logits.dtype)
    weights = torch.where(targets > 0.5, float(n_classes - 1), 1.0).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, targets, weight=weights)


def _check_maps(r: torch.Tensor, channels: int, grid: tuple[int, ...]) -> None:
    if r.dim() != 4 or r.shape[1] != channels or tuple(r.shape[2:]) != tuple(grid):
        raise ValueError(
            f"expected maps of shape (N, {channels}, {grid[0]}, {grid[1]}), got {tuple(r.shape)}"
        )

"""UDS: utility-diversity online batch selection for SFT (arXiv:2510.16882, github gfyddha/UDS).

Each training micro-batch of B candidates gets one no-grad forward pass; every candidate is scored

    score = utility / max(utility in the micro-batch) + alpha * diversity

and only the `k` best rows go through the normal loss, so backward runs on k samples.

- utility: nuclear norm of the sample's logits at the positions that carry a label after the
  causal shift (logits[t] predicts labels[t + 1]; labels == -100 is ignored), i.e. exactly the
  tokens the loss trains on. trainers/sft.py feeds TRL prompt/completion rows, so these are the
  answer tokens (TRL would label every non-pad token of plain `messages` rows).
  Computed as sqrt(eigvalsh(L L^T)); long samples get larger norms (as in the paper).
- sketch: the label-position logit rows, each centred over the vocabulary (softmax ignores a
  per-row shift), mean-pooled to one (V,) row, multiplied by fixed random signs, `rfft` along the
  vocabulary, the real part of `dim` fixed random frequency bins kept, L2-normalised. That is a
  subsampled randomised Fourier (JL) projection; pooling first is exact because it is linear.
- diversity: mean L2 distance (as the reference code's `torch.cdist`) from the sample's unit
  sketch to a FIFO memory of the sketches of previously selected samples; 0 while the memory is
  empty (as the reference code), so the first micro-batch is ranked by utility alone.

Differences from the reference code: it scores the full (T, V) logits, padding included, uses a
two-sided FFT projection of the whole matrix and adds raw utility to 2.5e-3 x raw distance; here
only label positions count, utility is divided by the micro-batch max and sketches are unit
vectors, so `alpha` weighs two quantities of order 1.

The trainer that runs this selection during SFT is trainers/uds_trainer.py (`UDSTrainer`, a
`trl.SFTTrainer` subclass). This module is the selection math only: it imports torch inside its
functions, so `import trainers.uds` imports neither torch nor trl.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100  # label value without loss (transformers / TRL convention)
DEFAULT_ALPHA = 0.5  # weight of diversity against max-normalised utility (both of order 1 here)
DEFAULT_K = 2  # rows kept per micro-batch; the paper keeps a fixed budget per batch (k_base)
DEFAULT_BUFFER = 64  # FIFO memory size; the reference code uses 1024 selected samples
DEFAULT_SKETCH_DIM = 64  # Fourier bins kept; the reference code keeps 128 x 8 = 1024 numbers
NORM_EPS = 1e-12  # guards the division of an all-zero sketch or utility vector


def label_rows(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Rows of one sample's (T, V) logits whose next token has a label -> (n, V).

    labels [-100, -100, 5, 7] -> logits rows 1 and 2 (they predict tokens 2 and 3).
    """
    return logits[:-1][labels[1:] != IGNORE_INDEX]


def nuclear_norm(logits: torch.Tensor) -> float:
    """Sum of the singular values of an (n, V) matrix, from the eigenvalues of its smaller Gram.

    The Gram is formed in float32 (float64 was ~7x slower on CPU for a (190, 49152) matrix; the
    float32 result was within 3e-6 relative of a float64 SVD on SmolLM2 logits), its eigenvalues
    in float64; rounding can make them slightly negative, so they are clamped at 0.
    """
    import torch

    x = logits.detach().float()
    if x.numel() == 0:
        return 0.0
    gram = x @ x.T if x.shape[0] <= x.shape[1] else x.T @ x
    return float(torch.linalg.eigvalsh(gram.double()).clamp(min=0).sqrt().sum())


def sample_utilities(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T, V) logits, (B, T) labels -> (B,) nuclear norms over label positions (0 if none)."""
    import torch

    return torch.tensor(
        [nuclear_norm(label_rows(lg, lb)) for lg, lb in zip(logits, labels, strict=True)]
    )


class LogitSketch:
    """Fixed subsampled randomised Fourier projection of pooled logit rows to a unit vector."""

    def __init__(self, vocab_size: int, dim: int, seed: int = 0) -> None:
        import torch

        bins = vocab_size // 2 + 1  # rfft output length
        if not 0 < dim <= bins:
            raise ValueError(f"sketch dim must be in 1..{bins} for vocab {vocab_size}, got {dim}")
        gen = torch.Generator().manual_seed(seed)
        self.vocab_size, self.dim = vocab_size, dim
        self.signs = torch.randint(0, 2, (vocab_size,), generator=gen).float() * 2 - 1
        self.bins = torch.randperm(bins, generator=gen)[:dim]

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """(n, V) logit rows -> (dim,) unit vector; zeros when n == 0."""
        import torch

        x = logits.detach().float()
        if x.shape[0] == 0:
            return torch.zeros(self.dim, device=x.device)
        row = x.mean(0)
        row = row - row.mean()  # mean of centred rows == centred mean row
        spec = torch.fft.rfft(row * self.signs.to(x.device)).real[self.bins.to(x.device)]
        return spec / spec.norm().clamp(min=NORM_EPS)

    def batch(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, T, V) logits, (B, T) labels -> (B, dim) sketches of the label positions."""
        import torch

        return torch.stack(
            [self(label_rows(lg, lb)) for lg, lb in zip(logits, labels, strict=True)]
        )


class SketchMemory:
    """FIFO memory of the sketches of selected samples; the oldest drop out past `size`."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"memory size must be >= 1, got {size}")
        self.items: deque[torch.Tensor] = deque(maxlen=size)

    def add(self, vectors: torch.Tensor) -> None:
        """Push the rows of an (m, d) tensor, first row first."""
        self.items.extend(v.detach().clone() for v in vectors)

    def __len__(self) -> int:
        return len(self.items)

    def stacked(self) -> torch.Tensor:
        """The memory as an (len, d) tensor, oldest first."""
        import torch

        return torch.stack(list(self.items))

    def diversity(self, vectors: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B,) mean L2 distance of each row to the memory; zeros while it is empty.

        [[1, 0]] against memory [[1, 0], [0, 1]] -> [(0 + sqrt 2) / 2] = [0.7071].
        """
        import torch

        if not self.items:
            return torch.zeros(vectors.shape[0], device=vectors.device)
        memory = self.stacked().to(vectors.device, vectors.dtype)
        return torch.cdist(vectors, memory).mean(1)


def uds_scores(
    utilities: torch.Tensor, sketches: torch.Tensor, memory: SketchMemory, alpha: float
) -> torch.Tensor:
    """utility / max utility of the micro-batch + alpha * diversity to the memory -> (B,)."""
    utilities = utilities.to(sketches.device, sketches.dtype)
    normalised = utilities / utilities.max().clamp(min=NORM_EPS)
    return normalised + alpha * memory.diversity(sketches)


def top_k(scores: torch.Tensor | list[float], k: int) -> list[int]:
    """Indices of the k best scores (ties: lower index), ascending. [.1, .9, .9], 2 -> [1, 2]."""
    values = [float(s) for s in scores]
    best = sorted(range(len(values)), key=lambda i: (-values[i], i))
    return sorted(best[: max(0, min(k, len(values)))])


def select_rows(
    logits: torch.Tensor,
    labels: torch.Tensor,
    sketch: LogitSketch,
    memory: SketchMemory,
    alpha: float,
    k: int,
) -> list[int]:
    """The UDS top-k rows of one micro-batch's (B, T, V) logits; their sketches join the memory."""
    sketches = sketch.batch(logits, labels)
    rows = top_k(uds_scores(sample_utilities(logits, labels), sketches, memory, alpha), k)
    memory.add(sketches[rows])
    return rows


def keep_rows(inputs: dict[str, Any], rows: list[int]) -> dict[str, Any]:
    """The batch with only `rows` of every tensor whose first dimension is the batch size."""
    import torch

    size = inputs["input_ids"].shape[0]
    index = torch.tensor(rows, device=inputs["input_ids"].device)
    return {
        key: value.index_select(0, index)
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == size
        else value
        for key, value in inputs.items()
    }


def trim_padding(inputs: dict[str, Any]) -> dict[str, Any]:
    """Drop trailing columns no kept row attends to (safe for a causal LM: nothing reads them).

    attention_mask [[1, 1, 0, 0], [1, 0, 0, 0]] -> every (B, T) tensor cut to 2 columns.
    """
    import torch

    mask = inputs.get("attention_mask")
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
        return inputs
    size, width = mask.shape
    used = torch.nonzero(mask.any(0))
    keep = int(used[-1]) + 1 if used.numel() else width
    return {
        key: value[:, :keep]
        if isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape == (size, width)
        else value
        for key, value in inputs.items()
    }


def label_count(labels: torch.Tensor) -> int:
    """Label tokens after the causal shift, as transformers counts `num_items_in_batch`."""
    return int((labels[..., 1:] != IGNORE_INDEX).sum())

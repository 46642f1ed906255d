"""Explorers for the SegFormer part: where a query attends when keys are
sequence-reduced.

Without trained weights, :func:`colour_attention_head` sets an
:class:`~tutorial_lib.layers.efficient_attention.EfficientSelfAttention` by hand so
that it compares *colours*: tokens are the LayerNorm of a fixed random affine map of
the pixel colours (:func:`colour_tokens`, a stand-in for a trained embedding),
q/k/v/proj are identities (q scaled by ``sharpness``) and the ``sr`` convolution
averages each ``sr × sr`` window. A query then attends to similarly coloured regions
anywhere in the image, on the coarse key grid. :func:`plot_colour_attention` is the
static figure of chapter 09; :func:`attention_explorer` redraws it for a query and a
reduction ratio chosen with sliders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..layers.efficient_attention import EfficientSelfAttention

__all__ = [
    "colour_tokens",
    "colour_attention_head",
    "plot_colour_attention",
    "attention_explorer",
    "block_attention",
    "AttentionStats",
    "attention_stats",
]


def colour_tokens(
    image: torch.Tensor, stride: int = 4, dim: int = 16, seed: int = 0
) -> Tuple[torch.Tensor, int, int]:
    """``image (3, H, W)`` → ``(tokens (1, N, dim), H/stride, W/stride)``: LN of a
    random affine colour map."""
    if (
        not isinstance(image, torch.Tensor)
        or image.ndim != 3
        or image.shape[0] != 3
    ):
        shape = (
            tuple(image.shape)
            if isinstance(image, torch.Tensor)
            else type(image).__name__
        )
        raise ValueError(
            "colour_tokens: expected an image tensor of shape (3, H, W), got "
            f"{shape}"
        )
    pixels = F.avg_pool2d(image[None], stride)  # (1, 3, H/s, W/s)
    h, w = pixels.shape[-2:]
    gen = torch.Generator().manual_seed(seed)
    embed, offset = (
        torch.randn(3, dim, generator=gen),
        torch.randn(dim, generator=gen),
    )
    # (1, N, C)
    tokens = F.layer_norm(
        (pixels.flatten(2).transpose(1, 2) - 0.5) @ embed + offset, (dim,)
    )
    return tokens, h, w


def colour_attention_head(
    dim: int, sr: int, sharpness: float = 3.0
) -> EfficientSelfAttention:
    """An :class:`~tutorial_lib.layers.efficient_attention.EfficientSelfAttention`
    whose weights compare colours (see the module docstring)."""
    m = EfficientSelfAttention(dim, num_heads=1, sr_ratio=sr).eval()
    with torch.no_grad():
        eye = torch.eye(dim)
        m.q.weight.copy_(sharpness * eye)
        m.q.bias.zero_()
        m.kv.weight.copy_(torch.cat([eye, eye]))
        m.kv.bias.zero_()
        m.proj.weight.copy_(eye)
        m.proj.bias.zero_()
        if sr > 1:
            m.sr.weight.zero_()
            m.sr.bias.zero_()
            for c in range(dim):
                # average pooling, channel by channel
                m.sr.weight[c, c] = 1.0 / sr**2
    return m


def plot_colour_attention(
    image: torch.Tensor,
    queries: Dict[str, Tuple[int, int]],
    ratios: Sequence[int] = (8, 4),
    stride: int = 4,
    sharpness: float = 3.0,
):
    """One row per ``sr`` ratio: the image with the queries, then each query's
    attention weights, each panel on its own colour scale (divided by its largest
    weight, which its title prints).

    ``queries`` maps a name to a ``(row, col)`` on the token grid (image size /
    ``stride``). Returns the figure.
    """
    import matplotlib.pyplot as plt

    tokens, h, w = colour_tokens(image, stride)
    for name, (r, c) in queries.items():
        if not (0 <= r < h and 0 <= c < w):
            raise ValueError(
                f"plot_colour_attention: query {name!r} at {(r, c)} is outside the "
                f"{h}×{w} token grid"
            )
    fig, axes = plt.subplots(
        len(ratios),
        len(queries) + 1,
        figsize=(7.0, 2.3 * len(ratios)),
        squeeze=False,
        layout="constrained",
    )
    photo = image.permute(1, 2, 0).numpy()
    extent = (0, image.shape[-1], image.shape[-2], 0)  # maps drawn over the photo
    for row, sr in enumerate(ratios):
        head = colour_attention_head(tokens.shape[-1], sr, sharpness)
        with torch.no_grad():
            maps = head.attention_map(tokens, h, w)[0, 0]  # (N, N_r)
        hr, wr = head.reduced_size(h, w)
        rows = {n: maps[r * w + c].reshape(hr, wr) for n, (r, c) in queries.items()}
        axes[row, 0].imshow(photo)
        for name, (r, c) in queries.items():
            axes[row, 0].plot(
                stride * c, stride * r, "o", ms=6, mec="k", label=name
            )
        axes[row, 0].set_title(f"queries, sr = {sr}", fontsize=9)
        for ax, (name, (r, c)) in zip(axes[row, 1:], queries.items()):
            # one colour scale per panel: each map relative to its own strongest key
            peak = rows[name].max().item()
            ax.imshow(photo, alpha=0.45)
            im = ax.imshow(
                (rows[name] / peak).numpy(),
                cmap="inferno",
                alpha=0.7,
                vmin=0,
                vmax=1,
                extent=extent,
                interpolation="nearest",
            )
            ax.plot(stride * c, stride * r, "o", ms=5, mfc="none", mec="cyan")
            ax.set_title(
                f"{name}, {hr}×{wr} keys\nmax weight {peak:.3f}", fontsize=8
            )
        fig.colorbar(im, ax=axes[row, 1:], shrink=0.85, label="weight ÷ panel max")
    # below the panels, where it covers no part of the photo
    fig.legend(
        *axes[0, 0].get_legend_handles_labels(),
        loc="outside lower center",
        ncol=len(queries),
        fontsize=8,
        frameon=False,
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def attention_explorer(image: Optional[torch.Tensor] = None, stride: int = 4):
    """Sliders for the query position, ``sr`` and sharpness → the query's attention
    weights."""
    import io

    import ipywidgets as wd
    import matplotlib.pyplot as plt
    from IPython.display import Image

    from ..data import sample_image

    image = sample_image() if image is None else image
    h, w = image.shape[1] // stride, image.shape[2] // stride
    row = wd.IntSlider(value=h // 2, min=0, max=h - 1, description="query row")
    col = wd.IntSlider(value=w // 2, min=0, max=w - 1, description="query col")
    sr = wd.SelectionSlider(options=[2, 4, 8, 16], value=8, description="sr")
    sharp = wd.FloatSlider(
        value=3.0, min=0.5, max=6.0, step=0.5, description="sharpness"
    )
    out = wd.Output()

    def redraw(_: Optional[dict] = None) -> None:
        # Write the figure into the Output widget's state directly (not ``with out:
        # plt.show()``): that routing needs a front end, and nbval has none, so the
        # figure would leak to the cell.
        fig = plot_colour_attention(
            image,
            {"query": (row.value, col.value)},
            ratios=(sr.value,),
            stride=stride,
            sharpness=sharp.value,
        )
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        plt.close(fig)
        out.outputs = ()
        out.append_display_data(Image(data=buffer.getvalue(), format="png"))

    for slider in (row, col, sr, sharp):
        slider.observe(redraw, names="value")
    redraw()
    return wd.HBox([wd.VBox([row, col, sr, sharp]), out])


@torch.no_grad()
def block_attention(
    model: torch.nn.Module, images: torch.Tensor, stage: int = 0, block: int = -1
) -> Tuple[torch.Tensor, Tuple[int, int], Tuple[int, int]]:
    """The attention weights of one block of a (trained) SegFormer on ``images``.

    Returns ``(weights (B, heads, N, N_r), (H, W), (H_r, W_r))``: the block's query grid
    and key grid. The block's own input is captured with a hook and its attention is
    recomputed with the explicit ``softmax(QKᵀ/√d)`` path.
    """
    stages = model.encoder.stages
    if not -len(stages) <= stage < len(stages):
        raise ValueError(
            f"block_attention: expected a stage in [0, {len(stages)}), got {stage}"
        )
    blocks = stages[stage].blocks
    if not -len(blocks) <= block < len(blocks):
        raise ValueError(
            f"block_attention: stage {stage} has {len(blocks)} blocks, got block "
            f"{block}"
        )
    attn = blocks[block].attn
    seen = {}

    def grab(module, args):
        seen["args"] = args  # (normalised tokens, H, W)

    handle = attn.register_forward_pre_hook(grab)
    was_training = model.training
    try:
        model.eval()(images)
    finally:
        handle.remove()
        model.train(was_training)
    x, H, W = seen["args"]
    return attn.attention_map(x, H, W), (H, W), attn.reduced_size(H, W)


#: A query "hardly selects" when every key's weight lies within this factor of the
#: uniform weight 1/N_r.
FLAT_FACTOR = 1.5


@dataclass(frozen=True)
class AttentionStats:
    """How one block's attention behaves over many images and every query and head:
    the ``queries`` and ``keys`` grids, the share of (image, head, query) triples
    whose weights all lie within ``FLAT_FACTOR`` of uniform (``hardly_selects``),
    the share whose strongest key is the key that covers the query's own region
    (``own_region``; ``1 / N_r`` by chance), and the mean of the strongest weight in
    units of the uniform weight (``peak``; 1 for uniform attention, ``N_r`` for a
    one-key lookup)."""

    stage: int
    queries: Tuple[int, int]
    keys: Tuple[int, int]
    hardly_selects: float
    own_region: float
    peak: float

    @property
    def num_keys(self) -> int:
        return self.keys[0] * self.keys[1]


def own_key(h: int, w: int, sr: int) -> torch.Tensor:
    """For each query of an ``h × w`` grid (row-major), the index of the key whose
    ``sr × sr`` window covers it ``(N,)``; rows and columns past the last full window,
    which the reduction drops, go to the nearest key."""
    hr, wr = max(h // sr, 1), max(w // sr, 1)
    r, c = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    kr, kc = (r // sr).clamp(max=hr - 1), (c // sr).clamp(max=wr - 1)
    return (kr * wr + kc).flatten()


@torch.no_grad()
def attention_stats(
    model: torch.nn.Module,
    images: torch.Tensor,
    stage: int = 0,
    block: int = -1,
    batch: int = 32,
) -> AttentionStats:
    """:class:`AttentionStats` of block ``block`` of ``stage`` of a (trained) SegFormer
    over ``images (B, 3, H, W)``, every query and head counted."""
    flat = own = peak = count = 0.0
    for start in range(0, len(images), batch):
        weights, (h, w), (hr, wr) = block_attention(
            model, images[start : start + batch], stage, block
        )
        n_r = hr * wr
        top, arg = weights.max(-1)  # (B, heads, N)
        low = weights.min(-1).values
        flat += float(
            ((top < FLAT_FACTOR / n_r) & (low > 1 / (FLAT_FACTOR * n_r))).sum()
        )
        sr = getattr(model.encoder.stages[stage].blocks[block].attn, "sr_ratio", 1)
        own += float((arg == own_key(h, w, sr)).sum())
        peak += float((top * n_r).sum())
        count += top.numel()
    return AttentionStats(
        stage, (h, w), (hr, wr), flat / count, own / count, peak / count
    )

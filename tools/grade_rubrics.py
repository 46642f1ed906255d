"""Answer keys and rubrics of the discussion exercises (the ones without a check).

``tools/assignments.py`` inserts each entry after its exercise in the *instructor* notebooks only;
they never reach the student notebooks or the installed package. Keys are ``(chapter stem, exercise
number)``; a discussion exercise without an entry stops ``make assignments`` (and fails
``tests/test_assignments.py``). Numbers quoted here come from the library's closed forms
(``overlap_output_size``, ``efficient_attention_macs``, ``SETR.param_breakdown``) and are asserted
by ``tests/test_assignments.py``; numbers that depend on training are described, not quoted.
Each rubric is out of 4 points; give half points for a right idea with a wrong number.
"""
from __future__ import annotations

from typing import Dict, Tuple

RUBRICS: Dict[Tuple[str, int], str] = {
    ("01_semantic_segmentation", 2): r"""
**Expected answer.** At 128 px the wires are half as many pixels wide, so at the same output stride a
larger share of each wire's pixels falls into label cells that are mostly background: the majority
vote's wire IoU goes **down** (the reference that predicts each stride cell's majority label loses the
thin structures first). It is a reference, not a bound — a model at that stride can score above it,
as the FCN does — and it is a property of the label maps and the stride, not of any model.

**Rubric (4 points).**
* 1 — renders the validation scenes at 128 px and calls `oracle_at_stride` at the same strides as the
  chapter (code runs, numbers reported for both resolutions).
* 1 — states that the majority vote's wire IoU at a given stride is lower at 128 px than at 256 px.
* 2 — explains it with the wire width *in pixels* relative to the stride cell (same width in scene
  units = half the pixels), e.g. "a stride-8 cell at 128 px covers as much scene as a stride-16 cell at
  256 px". Only 1 point for "lower resolution loses detail" without the stride-cell argument.
""",
    ("06_vit_patching", 3): r"""
**Expected answer.** Per block the linear layers cost $12ND^2$ MACs (qkv $3ND^2$, proj $ND^2$, MLP
$8ND^2$) and the two attention products $QK^\top$ and $AV$ cost $2N^2D$ (`count_macs` counts exactly
these terms: biases, LayerNorm and softmax count zero). Attention is half of the block when
$2N^2D = 12ND^2$, i.e. $N = 6D = 6144$ tokens for ViT-L: between 78 and 79 patches per side, an image
side of about **1250 px** at $P = 16$. It does **not** depend on the number of heads: $h$
heads of width $d = D/h$ cost $h \cdot N^2 d = N^2 D$.

**Rubric (4 points).**
* 1 — uses `count_macs` on the `meta` device (or the closed forms) for a ViT-L block at several sizes.
* 1 — finds the crossing near $N \approx 6144$ tokens / 1250 px (±1 patch per side).
* 2 — explains head independence with $h \cdot (D/h) = D$ (1 point if only asserted or only measured).
""",
    ("07_setr", 3): r"""
**Expected answer** (ADE20K setting, 512×512, 150 classes; `setr_pup("base").param_breakdown()`):

| item | closed form | parameters |
|---|---|---|
| ViT-B encoder, no final LN | patch embed $16^2\cdot3\cdot768+768$, class token $768$, position embeddings $1025\cdot768$, 12 blocks of $12D^2+13D$ | 86,433,024 |
| PUP head | LN $2\cdot768$; `conv_0` $768\cdot256\cdot9+256$; `conv_1..3` $3(256^2\cdot9+256)$; 4 BN $\cdot 2\cdot256$; `conv_4` $256\cdot150+150$ | 3,582,102 |
| four auxiliary heads | as built by the official config | 7,241,304 |
| five unused `conv_seg` | $5\,(512\cdot150+150)$ | 384,750 |
| **total** | | **97,641,180 = 97.64 M** |

Dropping any single item lands on a number the paper does not print: without the five `conv_seg`
layers 97.26 M, without the auxiliary heads 90.40 M. The expected point is that the paper's 97.64 M
counts both the auxiliary heads (discarded at test time) and the built-but-unused `conv_seg` layers.

**Rubric (4 points).**
* 2 — encoder total exact (1 point if off only by the final LayerNorm, $2\cdot768$, or the position
  embeddings' class-token row).
* 1 — head, auxiliary heads and `conv_seg` summed to 97,641,180 (97.64 M).
* 1 — names an item whose removal gives a total the paper does not print and concludes what Table 2
  counts.
""",
    ("08_overlap_patch_embed", 2): r"""
**Expected answer.** With `overlap_output_size` (stage 1: $K=7, S=4$; stages 2–4: $K=3, S=2$) a
$1024\times2048$ image gives stage sizes $256\times512$, $128\times256$, $64\times128$ and
$32\times64$. Stage 1 has **131,072 tokens**, **8×** the 16,384 of $512\times512$. Attention cost is
quadratic in the number of tokens: plain self-attention at stage 1 would cost $8^2 = 64$× more, which
is why SegFormer reduces the keys and values at stage 1 (spatial reduction $R = 64$, chapter 09); even
then the attention term grows 64× while the linear layers grow 8×.

**Rubric (4 points).**
* 1 — the four stage sizes (uses the function, not $H/4$ rounded by hand without checking).
* 1 — 131,072 tokens and the factor 8.
* 2 — attention is quadratic in $N$ (64× for the $N^2$ term) and the connection to efficient
  attention's reduction ratio (1 point for "more tokens is slower" without the quadratic argument).
""",
    ("09_efficient_attention", 2): r"""
**Expected answer** (`efficient_attention_macs`, square grids). Stage 1 of MiT-B0 ($C = 32$,
$sr = 8$, so $N_r = N/64$): the quadratic term $2NN_rC$ first exceeds all linear terms together
($2NC^2 + N_r s^2 C^2 + 2N_rC^2$) at a grid side of **56** tokens (checking multiples of 8), an input
image of **224×224** (stage 1 is 1/4 resolution). Stage 4 ($C = 256$, $sr = 1$): $2N^2C > 4NC^2$
when $N > 2C = 512$, a side of **23** tokens, an image of **736×736** (stage 4 is 1/32 resolution).
So at the usual 512×512 the quadratic term already dominates stage 1 despite the 64× reduction,
but not stage 4.

**Rubric (4 points).**
* 1 — sets up the comparison with the function (or its formula), separating the $2NN_rC$ term.
* 1 — stage 1: side 56 / 224 px (accept 48–64 / 192–256 px if the student scans a coarser grid and
  says so).
* 1 — stage 4: side 23 / 736 px (accept 22–24 with the $N > 2C$ argument).
* 1 — converts grid sides to image sizes with the right strides (4 and 32) and comments on 512×512.
""",
    ("10_mix_ffn", 2): r"""
**Expected answer.** With circular padding the convolution sees a torus: every token of a constant
input has the same neighbourhood, so all tokens stay identical, the number of distinct feature vectors
stays 1 and the probe's $R^2$ drops to about 0 (no better than predicting the mean position), like the
control without the convolution. Zero padding is what makes border tokens differ, and that difference
propagates one token per block; so Mix-FFN's positional information comes from the **zero padding at
the image border**, not from the convolution as such (a convolution is translation-equivariant).

**Rubric (4 points).**
* 1 — reruns the probe with `padding_mode="circular"` and reports $R^2$ and distinct vectors.
* 1 — observes that the position signal disappears ($R^2 \approx 0$, one distinct vector).
* 2 — explains it with translation equivariance on the torus / no border, and concludes that the
  signal comes from zero padding (1 point for the observation without the explanation).
""",
    ("11_all_mlp_decoder", 2): r"""
**Expected answer.** With eval-mode BatchNorm $y = s \odot x + t$ ($s = \gamma/\sqrt{\sigma^2+\epsilon}$,
$t = \beta - s\mu$): $M_i = s \odot W_f^{(i)} W_i$ (a $C \times C_i$ matrix) and
$b = s \odot \sum_i W_f^{(i)} b_i + t$; they match `FoldedAllMLPDecoder.from_decoder(decoder).weights`
to float precision ($\sim 10^{-6}$). `linear_pred` cannot be folded in because the **ReLU** (and, in
training, `Dropout2d`) sits between the BatchNorm and the classifier: the fold needs every step to be
affine. On `align_corners=True`: bilinear interpolation is linear and its weights still sum to one in
both modes, so the fold stays exact **as long as the folded decoder upsamples with the same mode** as
the original; it becomes wrong when the two use different modes (the folded code hard-codes
`align_corners=False`, as the official head) or with an upsampling whose weights do not sum to one
(a transposed convolution, zero-padded resampling), because then the bias no longer passes through.
Accept an answer that tests this numerically and reports what it finds.

**Rubric (4 points).**
* 1 — $M_i$ and $b$ computed by hand and compared with the library (max |difference| reported).
* 1 — the ReLU (non-linearity) as the reason `linear_pred` is not folded.
* 2 — the upsampling argument: linearity and constant preservation, and what actually breaks the fold
  (1 point for "align_corners changes the result" without checking which property matters).
""",
    ("11_all_mlp_decoder", 3): r"""
**Expected answer.** `segformer_macs(segformer_config("b2", decoder_dim=C), 512, 512, conv_bias=True)`
for $C = 256, 512, 768, 1024, 2048$ should reproduce the paper's MACs column (25.7, 39.8, 62.4,
93.6, 304.4 G; where a value differs, the chapter's Table 1 section explains the paper–code
differences), and `count_params` on the `meta` device the parameter column. The fold removes the fuse
layer's $N_1 \cdot 4C \cdot C$ MACs (at 1/4 resolution, quadratic in $C$) and replaces the four
Linears + fuse by maps $M_i$ at each stage's own resolution, so the saving grows roughly
quadratically with $C$; parameters drop by the fuse weight's $4C^2$ (the $M_i$ have
$C \cdot \sum_i C_i$ entries, as many as the four Linears).

**Rubric (4 points).**
* 1 — the five MAC totals match the paper to the printed digit (or the student names the item that
  differs and why).
* 1 — parameters for the five widths.
* 2 — the fold's saving per width computed (folded vs unfolded MACs) and explained by the $4C^2$ term
  at 1/4 resolution (1 point for the numbers without the explanation).
""",
    ("12_train_and_compare", 2): r"""
**Expected answer.** There is no single right ranking: the point is a fair comparison. A complete
answer trains SegFormer and DeepLabV3+ for twice the recorded schedule (`experiments.RECIPE` has 1,000
steps: 2,000 steps, everything else equal) with at least two seeds (e.g. `tools/run_experiments.py
--configs segformer deeplabv3plus --steps 2000 --seeds 0 1`), and reads the recorded runs of the *same
seeds* with `experiments.metric_values` for validation mIoU and wire IoU. It reports, per model, the
gain of the longer schedule (mean over seeds) beside the seed-to-seed spread of each schedule, and says
whether the ranking changes. Expected tendencies (to be checked, not asserted): both models are still
improving at 1,000 steps; a transformer encoder trained from scratch, with less built-in locality,
usually gains more from a longer schedule than the convolutional DeepLabV3+; wire IoU, bounded by the
output-stride reference of chapter 01, moves less than mIoU. A gain smaller than the spread between seeds
is not evidence of a difference.

**Rubric (4 points).**
* 1 — both models trained at 2,000 steps with the recipe otherwise unchanged, at least two seeds; code
  or command and numbers shown.
* 1 — compared with the recorded 1,000-step runs of the same seeds, on both metrics.
* 1 — the gain set against the seed-to-seed spread (mean ± sd or the per-seed values), with a verdict
  that respects it.
* 1 — a reasoned, hedged explanation of which model gains most (inductive bias, underfitting at 1,000
  steps, the stride reference for wires); no credit for an explanation that contradicts the student's own
  numbers.
""",
    ("13_receptive_fields", 3): r"""
**Expected answer.** At 64 px the image bounds the radii: every model but the FCN can see the
whole $64\times64$ scene, and a map spread evenly over it already has a 90 % radius of about 36 px.
On the $256\times256$ views (objects as many pixels across as in training, measured at each view's
deepest object pixel, `reduce="norm"` for features) the deep stages' radii **grow** once that bound
is gone — DeepLabV3+'s backbone and ASPP (its convolutions reach far, and image pooling reaches
everywhere) and SegFormer's stages 2–4 (attention spreads a thin tail of gradient over the whole
view, so its 90 % radius grows most) — while the stride-4 features (DeepLabV3+'s `low_level`,
SegFormer's stage 1 50 % radius) hardly change: they were never bounded. The encoders' last stages
can then compare differently by summary: with the shipped seed-0 models on these eight views
SegFormer's stage 4 has the smaller 50 % radius but the larger 90 % radius. So the 64-px comparison
measured the image as much as the models: it neither supports nor refutes the paper's Figure 3.
One seed and eight views give no verdict either — the book's rule needs the paired interval over
the recorded seeds, and the paper's images are larger still.

**Rubric (4 points).**
* 1 — the per-stage measurement on `data.same_scale_scenes(4, num_samples=8)` at
  `erf.object_centres` with `erf.erf_radii_at` (`"norm"` for features, `"predicted"` for logits),
  both radii for both models, beside the recorded 64-px values.
* 1 — which radii grow (the deep stages, the 90 % radius most) and which do not (stride-4
  features), explained by the image bound at 64 px.
* 1 — the last-stage comparison at 256 px stated per radius, without a verdict from one seed and
  eight views.
* 1 — the conclusion: the 64-px comparison was bounded by the image, so it cannot test Figure 3;
  what a test would need (several seeds, paired, larger images).
""",
}

"""Chapter 11: predict where the decoder's MACs go; scaffold for Exercise 2."""

from _cells import code, predict

PREDICT = predict(
    "where the decoder's MACs go",
    """
SegFormer-B0's All-MLP decoder at 512×512 ($C = 256$, 150 classes; stage maps at 1/4 … 1/32 with
32, 64, 160, 256 channels). Which layer costs the most MACs — `"linear_c"` (the four per-stage
linears together), `"linear_fuse"` or `"linear_pred"` — and roughly what share of the decoder's
MACs (a fraction, to 0.1)? Predict, then count on the `meta` device.
""",
    """
from tutorial_lib import checks

prediction = {"largest": ..., "share": ...}
""",
    """
prediction = {"largest": "linear_fuse", "share": 0.83}
""",
    """
measured = checks.measure_decoder_macs(512)
print({k: f"{v / 1e9:.2f} G" for k, v in measured.items()})
""",
    """
checks.check_predict_decoder_macs(prediction, measured)
""",
    """
linear_fuse maps $4C = 1024$ channels to $C = 256$ at every position of the 128×128 stage-1 grid:
$128^2 \\cdot 1024 \\cdot 256 \\approx 4.3$ G, about 83 % of the decoder. linear_pred ($256 \\to 150$) is next;
the linear_c layers run mostly on coarse grids.
""",
)

SCAFFOLDS = {
    2: [
        code(
            """
# A start for Exercise 2: a decoder with random BatchNorm statistics,
# and the library's fold to compare with.
import torch
from tutorial_lib.layers.all_mlp_decoder import (
    AllMLPDecoder as LibraryDecoder,
    FoldedAllMLPDecoder,
)

decoder = LibraryDecoder((8, 16, 24, 32), 16, 5).eval()
with torch.no_grad():
    decoder.norm.running_mean.normal_()
    decoder.norm.running_var.uniform_(0.5, 2.0)
folded = FoldedAllMLPDecoder.from_decoder(decoder)
# your M_i and b here, then compare with folded.weights
""",
            "discussion-scaffold",
        )
    ],
}

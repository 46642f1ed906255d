"""Chapter 08: predict MiT's stage sizes of an odd, non-square image; scaffold
for Exercise 2."""

from _cells import code, predict

PREDICT = predict(
    "stage sizes of a 37×50 image",
    """
MiT embeds with $K=7, S=4$ (padding 3) and then three times with $K=3, S=2$ (padding 1), each from the
previous stage's grid. Predict the four grids $(H_i, W_i)$ for a 37×50 image — not a multiple of 32 —
then measure them by running the library's `OverlapPatchEmbed`.
""",
    """
from tutorial_lib import checks

prediction = [..., ..., ..., ...]  # four (H, W) pairs, stage 1 first
""",
    """
prediction = [(10, 13), (5, 7), (3, 4), (2, 2)]
""",
    """
measured = checks.measure_stage_sizes(37, 50)
print(measured)
""",
    """
checks.check_predict_stage_sizes(prediction, measured)
""",
    """
$H_\\text{out} = \\lfloor (H + 2\\lfloor K/2\\rfloor - K)/S\\rfloor + 1$, which for these kernels equals
$\\lceil H/S\\rceil$: 37 → 10 → 5 → 3 → 2 and 50 → 13 → 7 → 4 → 2. Dividing and rounding *down*
(37 // 4 = 9) forgets the windows centred on the last pixels, which the padding makes possible.
""",
)

SCAFFOLDS = {
    2: [
        code(
            """
# A start for Exercise 2: the stage sizes of a 1024×2048 image,
# from the library's formula.
from tutorial_lib.layers.overlap_patch_embed import overlap_output_size

h, w = 1024, 2048
for k, s in ((7, 4), (3, 2), (3, 2), (3, 2)):
    h, w = overlap_output_size(h, k, s), overlap_output_size(w, k, s)
    print((h, w))
""",
            "discussion-scaffold",
        )
    ],
}

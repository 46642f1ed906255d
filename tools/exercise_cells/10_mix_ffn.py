"""Chapter 10: predict which tokens see the padding; the scaffold of Exercise 2
(circular padding) on the library's Mix-FFN — never on the student's ``MixFFN``,
whose name the Exercise-1 stub shadows."""

from _cells import code, predict

PREDICT = predict(
    "which tokens see the padding",
    """
Feed a *constant* 6×9 token map (every token identical) through one Mix-FFN. How many output tokens
differ from the centre token with the paper's zero padding, and how many with circular padding?
Predict both counts, then measure them with the library's Mix-FFN.
""",
    """
from tutorial_lib import checks

prediction = {"zeros": ..., "circular": ...}  # two ints
""",
    """
prediction = {"zeros": 26, "circular": 0}
""",
    """
measured = {
    mode: checks.measure_border_tokens(6, 9, padding_mode=mode)
    for mode in ("zeros", "circular")
}
print(measured)
""",
    """
checks.check_predict_border_tokens(prediction, measured)
""",
    """
A token differs when its $3\\times3$ window reaches past the grid: the ring of border tokens,
$2H + 2W - 4 = 26$ (the corners belong to two edges, counted once). With circular padding the window
wraps around to tokens identical to its own: nothing marks the border, 0 tokens differ.
""",
)

SCAFFOLDS = {
    2: [
        code(
            """
# A start for Exercise 2: the chapter's probe (tutorial_lib.probes) on the
# library's Mix-FFN, with the padding as an argument. Your own MixFFN of
# Exercise 1 is not used here, so a bug there cannot change this answer.
from tutorial_lib import checks

for mode in ("zeros", "circular"):
    result = checks.position_probe(padding_mode=mode, depth=4, side=16)
    print(
        f"{mode:9s} distinct token vectors: {result['distinct']:.0f}, probe R²: "
        f"{result['r2']:.2f}"
    )
""",
            "discussion-scaffold",
        )
    ],
}

"""Chapter 09: predict what sequence reduction saves; scaffold for Exercise 2."""

from _cells import code, predict

PREDICT = predict(
    "what sequence reduction saves",
    """
One efficient self-attention layer ($C = 32$) on a 32×32 token grid, with `sr_ratio` 1 and then 8.
Predict the factor by which the MACs of the attention products ($QK^\\top$ and $AV$) shrink, and
whether the *whole layer's* MACs shrink by a smaller factor (`True`/`False`). Then count them by
tracing the library's layer.
""",
    """
from tutorial_lib import checks

# a number, True or False
prediction = {"attention_factor": ..., "layer_factor_smaller": ...}
""",
    """
prediction = {"attention_factor": 64, "layer_factor_smaller": True}
""",
    """
measured = checks.measure_attention_cost(32)
for sr, macs in measured.items():
    print(f"sr_ratio {sr}: {macs:,} MACs")
""",
    """
checks.check_predict_attention_cost(prediction, measured)
""",
    """
The keys and values come from an $(H/sr)\\times(W/sr)$ grid, so $N_r = N/sr^2$ and the products
$2NN_rC$ shrink by $sr^2 = 64$. The projections q and proj ($NC^2$ each) do not shrink, and the
reduction convolution adds $N_r sr^2 C^2 = NC^2$: the whole layer shrinks far less.
""",
)

SCAFFOLDS = {
    2: [
        code(
            """
# A start for Exercise 2: the quadratic term against the linear ones,
# from the library's closed form.
from tutorial_lib.layers.efficient_attention import efficient_attention_macs

C, sr = 32, 8
for side in (32, 64, 128, 256):  # extend the search until the quadratic term wins
    total = efficient_attention_macs(side, side, C, sr)
    n, n_r = side * side, (side // sr) ** 2
    quadratic = 2 * n * n_r * C
    print(side, quadratic, total - quadratic)
""",
            "discussion-scaffold",
        )
    ],
}

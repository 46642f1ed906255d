"""Chapter 03: predict MACs per byte and time per MAC, then measure the timing table
(the third learning goal, "why fewer MACs is not proportionally less time")."""

from _cells import predict

PREDICT = predict(
    "MACs per byte, then time per MAC",
    """
Take a 64 → 64-channel $3\\times3$ layer on a $56\\times56$ map and its two separable parts. For each of
the three layers, reason about the MACs per output position ($K^2MN$, $K^2M$, $MN$) and the bytes it
must read and write (input, weights, output — about the same for all three). Then predict, **before**
measuring:

1. which layer does the fewest MACs per byte moved (`"standard"`, `"depthwise"` or `"pointwise"`);
2. which layer runs at the lowest GMAC/s;
3. whether the separable layer's time ratio to the standard layer is `"higher"`, `"equal"` or `"lower"`
   than its MAC ratio.

The measurement counts MACs exactly and the fewest bytes each layer must move (every tensor read or
written once), and times each layer as the chapter does (`profiling.time_modules`: one thread, interleaved rounds, the CPU time of the fastest round). Timings
depend on the machine: the check compares your prediction with the reasoning and reports whether this
run shows the expected order — it never compares absolute times.
""",
    """
from tutorial_lib import checks

prediction = {
    "lowest_intensity": ...,  # "standard", "depthwise" or "pointwise"
    "slowest_per_mac": ...,
    "time_ratio": ...,  # "higher", "equal" or "lower" than the MAC ratio
}
""",
    """
prediction = {
    "lowest_intensity": "depthwise",
    "slowest_per_mac": "depthwise",
    "time_ratio": "higher",
}
""",
    """
measured = checks.measure_separable_costs(**checks.deeplab.PREDICT_SEPARABLE_LAYER)
print(
    f"{'layer':10s} {'MACs':>12s} {'bytes':>10s} {'MACs/byte':>9s} {'GMAC/s':>7s}"
)
for name, row in measured.items():
    print(
        f"{name:10s} {row['macs']:12,d} {row['bytes']:10,d} "
        f"{row['intensity']:9.1f} {row['gmacs_per_s']:7.1f}"
    )
""",
    """
checks.check_predict_separable_speed(prediction, measured)
""",
    """
The three layers move about the same bytes (the input and output maps dominate), but the depthwise
layer does only $K^2 = 9$ MACs per input value against $K^2 N = 576$ for the standard one. So low an
arithmetic intensity caps the GMAC/s a layer can reach, and CPU depthwise kernels often run below
even that cap: its GMAC/s is the lowest of the three. Here that makes the cheapest-in-MACs part a
large share of the separable layer's time, and the separable layer's time ratio exceeds its MAC
ratio — MACs are not time. (How large a share depends on the machine and the layer: in the
chapter's larger layer above the depthwise part took a smaller share.)
""",
    timing=True,
)

SCAFFOLDS: dict = {}

"""Chapter 04: predict how many taps of an atrous kernel stay inside the map."""

from _cells import predict

PREDICT = predict(
    "taps that see the image",
    """
For the centre pixel of a square map, how many of a $3\\times3$ kernel's 9 taps land inside the map
(the others read zero padding)? Predict for three cases — a $33\\times33$ map at rate 6, the same map
at rate 18, and the $4\\times4$ map of a 64-px image at output stride 16 with rate 2 — then measure by
convolving a map of ones with a kernel of ones.
""",
    """
from tutorial_lib import checks

cases = checks.deeplab.PREDICT_ASPP_CASES  # [(map size, rate), ...]
prediction = [..., ..., ...]  # one int per case
""",
    """
prediction = [9, 1, 4]
""",
    """
measured = [checks.measure_aspp_taps(size, rate) for size, rate in cases]
print(dict(zip(cases, measured)))
""",
    """
checks.check_predict_aspp_taps(prediction, measured)
""",
    """
A tap at offset $\\pm r$ from the centre pixel $c = \\lfloor s/2\\rfloor$ is inside when $0 \\le c \\pm r < s$,
row and column alike. At rate 6 on 33 pixels all 9 taps are inside; at rate 18 only the centre remains,
a $1\\times1$ filter. On the $4\\times4$ map the centre pixel (2, 2) keeps offset $-2$ but loses $+2$: 2
per axis, 4 taps. That is why ASPP adds image-level pooling for global context.
""",
)

SCAFFOLDS: dict = {}

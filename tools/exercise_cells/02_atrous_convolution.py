"""Chapter 02: predict the receptive field of a strided, dilated stack, then
measure it by backpropagation."""

from _cells import predict

PREDICT = predict(
    "a strided, dilated stack",
    """
Three $3\\times3$ layers: the first with stride 2, then rate 2, then rate 4 (stride 1). Predict the
receptive field (pixels along one axis) of one output pixel, then measure it: the measurement
backpropagates from the centre output pixel of an all-ones stack and counts the input columns the
gradient reaches.
""",
    """
from tutorial_lib import checks

layers = checks.deeplab.PREDICT_RF_STACK  # [(kernel, stride, rate), ...]
prediction = ...  # an int
""",
    """
prediction = 27
""",
    """
measured = checks.measure_receptive_field(layers)
print("the gradient reaches", measured, "input pixels")
""",
    """
checks.check_predict_receptive_field(prediction, measured)
""",
    """
The first layer spans 3 pixels. After its stride, neighbouring positions of the next layers are 2 input
pixels apart, so the rate-2 layer (span 5 in its own grid) adds $(5-1)\\cdot 2 = 8$ and the rate-4 layer
(span 9) adds $(9-1)\\cdot 2 = 16$: $3 + 8 + 16 = 27$.
""",
)

SCAFFOLDS: dict = {}

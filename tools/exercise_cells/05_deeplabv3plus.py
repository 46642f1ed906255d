"""Chapter 05: predict where the decoder works."""

from _cells import predict

PREDICT = predict(
    "where the decoder works",
    """
A 64×64 image at output stride 16: the encoder's output is at 1/16 of the image, the low-level feature
at 1/4. Predict the spatial size `(h, w)` of the decoder's output, and by what factor the logits must
still be upsampled to the image, then measure them with the library's decoder.
""",
    """
from tutorial_lib import checks

prediction = {"decoder": ..., "upsampling_factor_after_decoder": ...}  # (h, w), int
""",
    """
prediction = {"decoder": (16, 16), "upsampling_factor_after_decoder": 4}
""",
    """
measured = checks.measure_decoder_shapes(64)
print(measured)
""",
    """
checks.check_predict_decoder_shapes(prediction, measured)
""",
    """
The decoder upsamples the 4×4 encoder output to the low-level feature's 16×16 and fuses them there;
the logits come out at 1/4 and a last ×4 bilinear upsampling reaches the image.
""",
)

SCAFFOLDS: dict = {}

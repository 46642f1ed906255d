"""Chapter 07: predict SETR's token count and PUP's output; scaffold for
Exercise 3 (counting by hand)."""

from _cells import code, predict

PREDICT = predict(
    "tokens and PUP's output",
    """
A 512×512 image with patch size 16: predict the number of tokens the SETR encoder processes and the
spatial size `(H, W)` of the PUP head's logits. Then measure with the library's PUP head.
""",
    """
from tutorial_lib import checks

prediction = {"tokens": ..., "pup_output": ...}  # int, (H, W)
""",
    """
prediction = {"tokens": 1024, "pup_output": (512, 512)}
""",
    """
measured = checks.measure_setr_shapes(512)
print(measured)
""",
    """
checks.check_predict_setr_shapes(prediction, measured)
""",
    """
$(512/16)^2 = 1024$ patch tokens (the class token is not decoded). The output stride is the patch size,
16, and PUP's four 2× upsamplings undo it: $2^4 = 16$, back to 512×512.
""",
)

SCAFFOLDS = {
    3: [
        code(
            """
# A start for Exercise 3: the library's breakdown of T-Base SETR-PUP, to check
# your hand count against (derive each item from the closed forms first; the
# breakdown only tells you whether you agree).
import torch
from tutorial_lib.models import setr

with torch.device("meta"):
    model = setr.setr_pup("base", num_classes=150, img_size=512)
# print(model.param_breakdown())  # uncomment after your derivation
""",
            "discussion-scaffold",
        )
    ],
}

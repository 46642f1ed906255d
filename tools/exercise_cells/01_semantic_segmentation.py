"""Chapter 01: predict the all-background baseline; scaffold for Exercise 2
(the majority vote at 128 px)."""

from _cells import code, predict

PREDICT = predict(
    "the all-background baseline",
    """
Before any model: predict what "background everywhere" scores. The first cell prints the share $b$ of
background pixels and the number $K$ of classes present in 16 validation scenes; write your prediction
of its **pixel accuracy** and its **mean IoU** (as fractions) *before* running the measurement. Which
of the two flatters the baseline, and why?
""",
    """
from tutorial_lib import checks

measured = checks.measure_background_baseline()
print(
    f"background share b = {measured['background_share']:.3f}, classes present "
    f"K = {measured['classes_present']}"
)
prediction = {"pixel_accuracy": ..., "mean_iou": ...}
""",
    """
prediction = {
    "pixel_accuracy": measured["background_share"],
    "mean_iou": measured["background_share"] / measured["classes_present"],
}
""",
    """
print(
    f"pixel accuracy {measured['pixel_accuracy']:.3f}, mean IoU "
    f"{measured['mean_iou']:.3f}"
)
""",
    """
checks.check_predict_background_baseline(prediction, measured)
""",
    """
Every background pixel is right and every other pixel wrong, so the accuracy is $b$. Background's IoU
is also $b$ (its union is every pixel), and each other class present has IoU 0: the mean over the $K$
classes is $b/K$. Pixel accuracy rewards the majority class; mean IoU gives every class the same weight.
""",
)

SCAFFOLDS = {
    2: [
        code(
            """
# A start for Exercise 2: the same majority vote at two resolutions (the chapter's
# vote_confusion and oracle at 256 px).
from tutorial_lib import data

# the validation scenes of `hires` (256 px), rendered at 128 px
scenes_128 = data.SyntheticScenes(len(hires), size=128, seed=1)
for s in (8,):  # then the chapter's other strides
    wire = iou_per_class(vote_confusion(scenes_128, s))[-1]
    print(f"OS {s}: wire IoU {oracle[s][-1]:.3f} at 256 px, {wire:.3f} at 128 px")
""",
            "discussion-scaffold",
        )
    ],
}

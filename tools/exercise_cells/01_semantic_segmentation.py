"""Chapter 01: predict the all-background baseline; scaffold for Exercise 2 (the ceiling at 128 px)."""
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
print(f"background share b = {measured['background_share']:.3f}, classes present K = {measured['classes_present']}")
prediction = {"pixel_accuracy": ..., "mean_iou": ...}
""",
    """
prediction = {"pixel_accuracy": measured["background_share"],
              "mean_iou": measured["background_share"] / measured["classes_present"]}
""",
    """
print(f"pixel accuracy {measured['pixel_accuracy']:.3f}, mean IoU {measured['mean_iou']:.3f}")
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
    2: [code("""
# A start for Exercise 2: the same oracle at two resolutions (fill in the strides and compare).
from tutorial_lib import data

scenes_128 = data.SyntheticScenes(len(hires), size=128, seed=1)  # `hires`, the same scenes at 128 px
masks_128 = torch.stack([scenes_128[i][1] for i in range(len(scenes_128))])
# now the wire IoU of oracle_at_stride(masks_128, stride, data.NUM_CLASSES) at the chapter's strides,
# beside the 256-px numbers of the section 'Output stride: computing coarse, predicting fine'
""", "discussion-scaffold")],
}

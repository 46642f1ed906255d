"""Chapter 13: predict how the ERF grows with depth; the scaffold of Exercise 3
(the per-stage ERF on wide views at the training object scale)."""

from _cells import code, predict

PREDICT = predict(
    "how the ERF grows with depth",
    """
From 4 to 16 uniform $3\\times3$ layers the theoretical receptive field grows 4× (radius $n$). By what
factor does the 90 % ERF radius grow? Predict a number, then measure the two radii by backpropagation.
""",
    """
from tutorial_lib import checks

prediction = ...  # a factor
""",
    """
prediction = 2.0
""",
    """
measured = checks.measure_uniform_erf_radii((4, 16))
print(measured)
""",
    """
checks.check_predict_erf_growth(prediction, measured)
""",
    """
The ERF of $n$ uniform layers is the $n$-fold convolution of a box: per axis the distribution of a sum
of $n$ independent steps of $-1, 0, +1$, whose spread grows as $\\sqrt n$ (the central limit theorem).
Four times the depth gives about twice the radius, while the theoretical field grows 4×.
""",
)

SCAFFOLDS = {
    3: [
        code(
            """
# A start for Exercise 3: wide views at the training object scale, measured at
# each view's deepest object pixel; here the encoders' last stages of the shipped
# (seed-0) models, beside the record at 64 px (mean ± sd over seeds). Extend it
# to every stage of erf.stage_outputs(model).
import torch
from tutorial_lib import compare, data, erf, experiments

views = data.same_scale_scenes(4, num_samples=8)  # 256×256: 4×4 scenes' worth
images = torch.stack([views[i][0] for i in range(len(views))])
masks = torch.stack([views[i][1] for i in range(len(views))])
positions = erf.object_centres(masks)
columns = f"{'model':13s} {'stage':8s} {'view':>6s}"
print(columns, f"{'r50 (px)':>10s} {'r90 (px)':>10s}")
for name, stage in (("segformer", "stage4"), ("deeplabv3plus", "backbone")):
    model = compare.load_trained(name)
    output = erf.stage_outputs(model)[stage]
    radii = erf.erf_radii_at(model, images, positions, output, reduce="norm")
    recorded = [experiments.summary(name, f"erf.{stage}.r{p}") for p in (50, 90)]
    row = f"{name:13s} {stage:8s}"
    print(f"{row} {'64 px':>6s}", *(f"{format(s, '.1f'):>10s}" for s in recorded))
    print(f"{row} {'256 px':>6s} {radii[0.5]:10.1f} {radii[0.9]:10.1f}")
""",
            "discussion-scaffold",
        )
    ],
}

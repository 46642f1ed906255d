"""Chapter 13: predict how the ERF grows with depth; the scaffold of Exercise 3 (ERF at 256 px)."""
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
    3: [code("""
# A start for Exercise 3: the same scenes at 256 px, and the trained models of the chapter.
from tutorial_lib import compare, data

scenes_256 = data.SyntheticScenes(8, size=256, seed=1)
models = {name: compare.load_trained(name) for name in ("deeplabv3plus", "segformer")}
# measure the ERF as in the section 'The ERF of the trained models', then the 50 % and 90 % radii
""", "discussion-scaffold")],
}

"""Chapter 12: predict parameters against MACs; the scaffold of Exercise 2
(a longer schedule)."""

from _cells import code, predict

PREDICT = predict(
    "parameters against MACs",
    """
The six capstone models at 64×64. Predict which has the most parameters, which needs the most MACs
per image, and whether they are the same model. Then count both with the library (exact numbers: the
same on every machine).
""",
    """
from tutorial_lib import checks

# model names, True or False
prediction = {"most_params": ..., "most_macs": ..., "same_model": ...}
""",
    """
prediction = {
    "most_params": "segformer",
    "most_macs": "setr_pup",
    "same_model": False,
}
""",
    """
measured = checks.measure_model_costs()
for name, row in measured.items():
    print(f"{name:14s} {row['params']:>9,d} params {row['macs'] / 1e6:8.1f} M MACs")
""",
    """
checks.check_predict_model_costs(prediction, measured)
""",
    """
Parameters count weights; MACs count weights times the positions each layer runs at. SegFormer stacks
the most weights (four stages and a 128-wide decoder), but SETR-PUP runs wide 3×3 convolutions on
progressively larger maps up to the image size, so it needs the most MACs: the two rankings differ.
""",
)

SCAFFOLDS = {
    2: [
        code(
            """
# A start for Exercise 2: the recorded schedule, and the command that doubles
# it (run it in a clone of the repository; each run takes about twice its
# recorded train_seconds).
from tutorial_lib import experiments

print("recorded recipe:", experiments.RECIPE)
print(
    "python tools/run_experiments.py --configs segformer deeplabv3plus"
    " --steps 2000 --seeds 0 1 --out long.json --no-checkpoints"
)
""",
            "discussion-scaffold",
        )
    ],
}

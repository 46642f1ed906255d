"""Chapter 06: predict how attention and linear costs grow with the image;
scaffold for Exercise 3."""

from _cells import code, predict

PREDICT = predict(
    "doubling the image side",
    """
A ViT block (here $D = 64$, $P = 16$) on a 256×256 image, then on a 512×512 one. By what factor grow
the MACs of the two attention products ($QK^\\top$ and $AV$), and those of the linear layers (qkv, proj,
MLP)? Predict both factors, then count them with `count_macs` on the `meta` device.
""",
    """
from tutorial_lib import checks

prediction = {"attention_products": ..., "linear": ...}  # two factors
""",
    """
prediction = {"attention_products": 16, "linear": 4}
""",
    """
measured = {side: checks.measure_vit_block_macs(side) for side in (256, 512)}
for side, row in measured.items():
    print(side, row)
""",
    """
checks.check_predict_attention_growth(prediction, measured)
""",
    """
Doubling the side multiplies the token count $N = HW/P^2$ by 4. The linear layers cost $12ND^2$:
×4. The attention products cost $2N^2D$: ×16 — the fourth power of the side.
""",
)

SCAFFOLDS = {
    3: [
        code(
            """
# A start for Exercise 3: one ViT-L block on the meta device,
# its MACs split by operator.
import torch
from tutorial_lib.models.vit import Block
from tutorial_lib.profiling import count_macs

with torch.device("meta"):
    block = Block(1024, 16)
for side in (224, 512):  # extend the sizes until attention is half of the block
    n = (side // 16) ** 2
    ops = count_macs(block, torch.empty(1, n, 1024, device="meta")).by_operator
    print(side, ops)
""",
            "discussion-scaffold",
        )
    ],
}

"""setup_notebook, seeding and source listings."""
import pytest
import torch

from tutorial_lib.models.fcn import TinyFCN
from tutorial_lib.utils import seed_everything, setup_notebook, show_source


def test_seed_everything_repeats_random_streams():
    seed_everything(7)
    a = torch.rand(3)
    seed_everything(7)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(-1)


def test_setup_notebook_seeds():
    setup_notebook(seed=0)
    a = torch.randn(2)
    setup_notebook(seed=0)
    assert torch.equal(a, torch.randn(2))


def test_show_source_plain_text_is_the_source_and_html_is_highlighted():
    listing = show_source(TinyFCN.forward)
    assert repr(listing).startswith("def forward(self, x: torch.Tensor)")
    assert "<span" in listing._repr_html_()
    with pytest.raises(ValueError, match="Python source"):
        show_source(42)

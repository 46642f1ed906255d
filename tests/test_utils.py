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


@pytest.mark.parametrize("value", [22.510753126983975, 204966, "1e-7", [8, 16]])
@pytest.mark.parametrize("display", [False, True])
def test_glue_writes_what_myst_nb_glue_writes(monkeypatch: pytest.MonkeyPatch, value, display) -> None:
    """The book build reads glued values from the stored outputs: ours must be myst-nb's format."""
    import IPython
    import IPython.display
    from myst_nb.ext import glue as myst_glue

    from tutorial_lib.utils import glue

    calls = []
    record = lambda *objs, **kw: calls.append((objs, kw))  # noqa: E731
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", record)
    monkeypatch.setattr(myst_glue, "ipy_display", record)
    glue("answer", value, display=display)
    myst_glue.glue("answer", value, display=display)
    assert len(calls) == 2 and calls[0] == calls[1]


def test_glue_is_harmless_outside_ipython(capsys: pytest.CaptureFixture) -> None:
    from tutorial_lib.utils import glue

    glue("answer", 42)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="identifier"):
        glue("not a name", 1)

"""The model factories of tutorial_lib, by name, as timm users expect.

``create_model("segformer_b0", num_classes=19)`` calls
:func:`tutorial_lib.models.segformer.segformer_b0` with those keyword arguments;
``list_models()`` gives every name, ``list_models("setr_*")`` those matching a shell
pattern. The factories are also importable from here
(``from tutorial_lib.models import segformer_b0``).

A factory is a function in a ``tutorial_lib.models.*`` module's ``__all__`` whose
return annotation is an ``nn.Module`` — the rule ``tests/test_robustness.py`` uses,
so every listed model also has a robustness spec. Large models build in milliseconds
on the ``meta`` device::

    with torch.device("meta"):
        model = create_model("vit_large_patch16_224")
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib
import inspect
import pkgutil
import typing
from typing import Callable, Dict, List, Optional

from torch import nn

from .deeplab import deeplabv3plus_small, deeplabv3plus_xception65
from .fcn import tiny_fcn
from .segformer import (
    segformer_b0,
    segformer_b1,
    segformer_b2,
    segformer_b3,
    segformer_b4,
    segformer_b5,
)
from .setr import setr_mla, setr_naive, setr_pup
from .vit import vit_base_patch16_224, vit_large_patch16_224
from .xception import xception65

__all__ = [
    "create_model",
    "list_models",
    "deeplabv3plus_small",
    "deeplabv3plus_xception65",
    "tiny_fcn",
    "segformer_b0",
    "segformer_b1",
    "segformer_b2",
    "segformer_b3",
    "segformer_b4",
    "segformer_b5",
    "setr_mla",
    "setr_naive",
    "setr_pup",
    "vit_base_patch16_224",
    "vit_large_patch16_224",
    "xception65",
]


def _is_factory(obj: object) -> bool:
    if not inspect.isfunction(obj):
        return False
    try:
        ret = typing.get_type_hints(obj).get("return")
    except Exception:  # noqa: BLE001 - an unresolvable annotation is not a factory
        return False
    return inspect.isclass(ret) and issubclass(ret, nn.Module)


@functools.lru_cache(maxsize=None)
def _registry() -> Dict[str, Callable[..., nn.Module]]:
    found: Dict[str, Callable[..., nn.Module]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if _is_factory(obj):
                if name in found and found[name] is not obj:
                    raise RuntimeError(
                        f"tutorial_lib.models: two factories named {name!r} "
                        f"({found[name].__module__} and {obj.__module__})"
                    )
                found[name] = obj
    return found


def list_models(pattern: Optional[str] = None) -> List[str]:
    """Sorted names of every model factory, optionally filtered by a shell pattern
    (``"segformer_*"``)."""
    names = sorted(_registry())
    return (
        names
        if pattern is None
        else [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    )


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the model called ``name`` (see :func:`list_models`); ``kwargs`` go to
    its factory unchanged.

    An unknown name raises ``ValueError`` with the closest names (so
    ``"segformer-b0"`` or ``"SegFormer_B0"`` suggest ``"segformer_b0"``).
    """
    registry = _registry()
    if not isinstance(name, str):
        raise ValueError(
            f"create_model: expected a model name (str), got {type(name).__name__}"
        )
    if name not in registry:
        key = name.lower().replace("-", "_")
        close = difflib.get_close_matches(key, list(registry), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"create_model: expected one of the {len(registry)} names that "
            f"tutorial_lib.models.list_models() gives, got {name!r}{hint}"
        )
    return registry[name](**kwargs)

"""Stand-ins: what a check receives instead of the student's function or class.

Calling a stand-in sends the arguments to the submission's sandbox (:class:`~.sandbox.Sandbox`)
and returns what the student's code returned there; an exception it raised there is raised here
with the same type (built-in types; others become ``StudentError``) and message, and the
student's line in ``student_where``. A class stand-in builds the module there and a *skeleton*
here: the same submodule tree (standard ``torch.nn`` classes keep their class), parameter names,
shapes and values; ``forward`` sends the skeleton's current weights and the inputs.
"""

from __future__ import annotations

import builtins
from typing import Any, Dict

from torch import nn

from .wire import Opaque


class StudentError(Exception):
    """An exception of a type that is not a built-in one, raised by the submission's code."""


def rebuild(error: Dict[str, Any]) -> BaseException:
    name, message = (
        str(error.get("type", "Exception")),
        str(error.get("message", "")),
    )
    cls = getattr(builtins, name, None)
    if (
        isinstance(cls, type)
        and issubclass(cls, Exception)
        and name != "StopIteration"
    ):
        err: BaseException = cls(message) if message else cls()
    else:  # SystemExit, KeyboardInterrupt, torch or user-defined exceptions
        err = StudentError(f"{name}: {message}" if message else name)
    err.student_where = str(error.get("where", ""))  # type: ignore[attr-defined]
    err.student_type = name  # type: ignore[attr-defined]
    err.student_message = message  # type: ignore[attr-defined]
    return err


class RemoteFunction:
    """Calls the submission's function ``symbol`` in its sandbox."""

    def __init__(self, box: Any, symbol: str, timeout: float) -> None:
        self._box, self._timeout = box, timeout
        self.__name__ = self.__qualname__ = symbol

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._box.request(
            self._timeout, op="call", symbol=self.__name__, args=args, kwargs=kwargs
        )

    def __repr__(self) -> str:
        return f"<submitted function {self.__name__}>"


class RemoteModule(nn.Module):
    """Base of the stand-in classes: builds the student's module there and its skeleton here."""

    _box: Any
    _symbol: str
    _timeout: float

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        built = cls._box.request(
            cls._timeout, op="new", symbol=cls._symbol, args=args, kwargs=kwargs
        )
        if not isinstance(built, dict) or "opaque" in built:
            return Opaque(
                str(built.get("opaque", "?")) if isinstance(built, dict) else "?"
            )
        self = super().__new__(cls)
        self._built = built
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        built = self.__dict__.pop("_built")
        super().__init__()
        self._handle = built["handle"]
        modules: Dict[str, nn.Module] = {"": self}
        for node in built["tree"]:
            if node["name"] == "":
                module = self
            else:
                cls = (
                    getattr(nn, node["torch_class"])
                    if node["torch_class"]
                    else None
                )
                module = (
                    cls.__new__(cls)
                    if isinstance(cls, type) and issubclass(cls, nn.Module)
                    else nn.Module()
                )
                nn.Module.__init__(module)
                parent, _, leaf = node["name"].rpartition(".")
                modules[parent].add_module(leaf, module)
                modules[node["name"]] = module
            for key, value in node["params"].items():
                param = (
                    None
                    if value is None
                    else nn.Parameter(
                        value, requires_grad=node["requires_grad"].get(key, True)
                    )
                )
                module.register_parameter(key, param)
            for key, value in node["buffers"].items():
                module.register_buffer(
                    key, value, persistent=key in node["persistent"]
                )
        self.train(built["training"])

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        state = {k: v.detach() for k, v in self.state_dict(keep_vars=True).items()}
        cls = type(self)
        return cls._box.request(
            cls._timeout,
            op="forward",
            handle=self._handle,
            state=state,
            training=self.training,
            args=args,
            kwargs=kwargs,
        )


def stand_in(box: Any, symbol: str, timeout: float) -> Any:
    """The object a check receives for the submission's ``symbol``."""
    kind = box.request(timeout, op="kind", symbol=symbol)["kind"]
    if kind == "module_class":
        return type(
            symbol,
            (RemoteModule,),
            {
                "_box": box,
                "_symbol": symbol,
                "_timeout": timeout,
                "__qualname__": symbol,
            },
        )
    if kind in {"callable", "class"}:
        return RemoteFunction(box, symbol, timeout)
    return Opaque(kind)

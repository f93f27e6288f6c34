"""What is served: the base model, LoRA adapters loaded on it, and aliases that point at one.

Agents call an alias (default `agent`), so a deployment moves the alias and never needs an
agent restart. Each alias keeps its history for `rollback`. Adapters are checked before PEFT
touches the model (config present, LoRA, every weight's shape matching this base model), so
a wrong adapter gives a clear error and what is served stays served.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tracewheel.core.base_model import model_name
from tracewheel.core.errors import FailedPrecondition, InvalidArgument, NotFound

log = logging.getLogger(__name__)

DEFAULT_ALIAS = "agent"


@dataclass(frozen=True)
class ServedModel:
    name: str
    kind: str  # base | adapter | alias
    target: str = ""
    path: str = ""


def check_adapter(path: Path, model: Any) -> dict[str, Any]:
    """Validates a LoRA adapter folder against the served base model; returns its config.

    Raises:
        InvalidArgument: missing folder or files, not a LoRA adapter, a DoRA one, or trained for
            another base.
    """
    if not path.is_dir():
        raise InvalidArgument(f"adapter path {path} does not exist or is not a folder")
    config_file = path / "adapter_config.json"
    weights_file = path / "adapter_model.safetensors"
    if not config_file.exists() or not weights_file.exists():
        raise InvalidArgument(f"{path} is not a PEFT adapter (needs adapter_config.json and adapter_model.safetensors)")
    config: dict[str, Any] = json.loads(config_file.read_text())
    if config.get("peft_type") != "LORA":
        raise InvalidArgument(f"{path}: only LoRA adapters are served, this one is {config.get('peft_type')!r}")
    if config.get("use_dora"):
        # PEFT refuses per-row adapters (adapter_names) with DoRA, and vLLM serves no DoRA either
        raise InvalidArgument(f"{path} is a DoRA adapter (use_dora: true), which is not served; train it without DoRA")
    from safetensors import safe_open

    base = getattr(model, "get_base_model", lambda: model)()
    modules = dict(base.named_modules())
    with safe_open(str(weights_file), framework="pt") as weights:
        for key in weights.keys():  # noqa: SIM118 - safe_open has no __iter__
            # base_model.model.<module path>.lora_A.weight
            module_path, _, kind = key.removeprefix("base_model.model.").rpartition(".lora_")
            module = modules.get(module_path)
            if module is None:
                raise InvalidArgument(
                    f"{path} was trained for another base model: it has {module_path}, this model does not"
                )
            base_layer: Any = getattr(module, "base_layer", module)
            shape = weights.get_slice(key).get_shape()
            expected = base_layer.in_features if kind.startswith("A") else base_layer.out_features
            actual = shape[1] if kind.startswith("A") else shape[0]
            if actual != expected:
                raise InvalidArgument(
                    f"{path} was trained for another base model: {module_path} has {expected} features here, "
                    f"{actual} in the adapter"
                )
    return config


def check_base_model(path: Path, served: str) -> None:
    """Refuses an adapter trained on another base model than `served` (a folder or id), by the
    name its adapter_config.json records (`base_model_name_or_path`, the folder the trainer
    trained; its training.json says the same). Names are compared without their folders, so a
    model mounted at another path elsewhere is the same model. An adapter that records no base
    model, or a server that names none (`served` ""), is not checked here.

    Raises:
        InvalidArgument: the adapter names another base model; the message names both and what to set.
    """
    config_file = path / "adapter_config.json"
    if not served or not config_file.is_file():
        return
    try:
        trained_on = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        return  # not an adapter config: check_adapter or the backend says why
    if not isinstance(trained_on, str) or not trained_on:
        return
    if model_name(trained_on).casefold() != model_name(served).casefold():
        raise InvalidArgument(
            f"adapter {path} was trained on base model {model_name(trained_on)} ({trained_on}), but this server"
            f" serves {model_name(served)} ({served}): load it on a server of {model_name(trained_on)}"
            f" (TW_INFERENCE_MODEL), or train it on {model_name(served)} (TW_TRAINER_BASE_MODEL_DIR and"
            " TW_DATASET_BASE_MODEL name the model inference serves)"
        )


class AdapterBackend(Protocol):
    """Where adapters are actually loaded: PEFT on the embedded engine, or a vLLM server."""

    def load(self, name: str, path: str, *, first: bool) -> None: ...

    def unload(self, name: str, *, last: bool) -> None: ...


def check_peft_name(name: str) -> None:
    """Refuses adapter names PEFT cannot hold: it keeps adapters in torch ModuleDicts, whose keys
    must not contain "." nor be a module attribute ("train", "eval", "to", ...). (An adapter
    named "train" once failed deep inside peft as an internal error.)

    Raises:
        InvalidArgument: the name cannot be used; says why.
    """
    import torch

    if "." in name or hasattr(torch.nn.ModuleDict(), name):
        raise InvalidArgument(
            f"adapter name {name!r} cannot be served by the CPU engine: PEFT keys adapters in a torch ModuleDict,"
            " which refuses names with '.' and names of its own attributes; choose another name"
        )


class PeftAdapters:
    """LoRA adapters on the embedded engine's model (PEFT multi-adapter)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def load(self, name: str, path: str, *, first: bool) -> None:
        from peft import PeftModel

        check_peft_name(name)
        with self.engine.lock:  # between two engine steps
            check_adapter(Path(path), self.engine.model)
            self._reset_merged()
            if first:
                self.engine.model = PeftModel.from_pretrained(self.engine.model, path, adapter_name=name).eval()
            else:
                self.engine.model.load_adapter(path, adapter_name=name, is_trainable=False)

    def unload(self, name: str, *, last: bool) -> None:
        with self.engine.lock:
            self._reset_merged()
            if last:
                self.engine.model = self.engine.model.unload()  # back to the plain base model
            else:
                self.engine.model.delete_adapter(name)
            if self.engine.prefix_cache is not None:
                self.engine.prefix_cache.drop_adapter(name)

    def _reset_merged(self) -> None:
        """PEFT must see its own base weights before it changes the model (engine/merging.py)."""
        if self.engine.weights is not None and getattr(self.engine.model, "peft_config", None):
            self.engine.weights.reset(self.engine.model)


@dataclass
class ModelRegistry:
    """Adapters and aliases over one adapter backend. Thread-safe."""

    backend: AdapterBackend
    base_name: str
    adapters: dict[str, str] = field(default_factory=dict)  # name -> path
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> target model name
    history: dict[str, list[str]] = field(default_factory=dict)  # alias -> previous targets
    on_change: Callable[[], None] | None = None  # called after every change (persistence)
    base_model: str = ""  # the served base model's folder or id; adapters for another are refused
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.aliases.setdefault(DEFAULT_ALIAS, self.base_name)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def resolve(self, name: str) -> str | None:
        """The adapter a request for `name` runs with (None: the base model).

        Raises:
            NotFound: no model, adapter or alias has that name.
        """
        with self._lock:
            target = self.aliases.get(name, name)
            if target == self.base_name:
                return None
            if target in self.adapters:
                return target
        raise NotFound(f"The model `{name}` does not exist.")

    def list(self) -> list[ServedModel]:
        with self._lock:
            models = [ServedModel(self.base_name, "base")]
            models += [ServedModel(name, "adapter", self.base_name, path) for name, path in self.adapters.items()]
            models += [ServedModel(alias, "alias", target) for alias, target in self.aliases.items()]
            return models

    def load(self, name: str, path: str) -> tuple[ServedModel, float]:
        """Loads a LoRA adapter under `name`; returns it and the seconds it took.

        Raises:
            InvalidArgument: a bad adapter (see check_adapter), one trained on another base model
                (check_base_model), or a name taken by the base or an alias.
        """
        if name == self.base_name or name in self.aliases:
            raise InvalidArgument(f"the name {name!r} is taken by the base model or an alias")
        check_base_model(Path(path), self.base_model)
        started = time.perf_counter()
        with self._lock:
            if name in self.adapters:
                if self.adapters[name] == path:
                    return ServedModel(name, "adapter", self.base_name, path), 0.0  # a repeated load is a no-op
                raise InvalidArgument(f"an adapter named {name!r} is already loaded from {self.adapters[name]}")
            self.backend.load(name, path, first=not self.adapters)
            self.adapters[name] = path
            self._changed()
        seconds = time.perf_counter() - started
        log.info("loaded adapter %s from %s in %.2f s", name, path, seconds)
        return ServedModel(name, "adapter", self.base_name, path), seconds

    def unload(self, name: str) -> None:
        """Removes an adapter.

        Raises:
            NotFound: no such adapter. FailedPrecondition: an alias still points at it.
        """
        with self._lock:
            if name not in self.adapters:
                raise NotFound(f"no adapter named {name!r} is loaded")
            users = [alias for alias, target in self.aliases.items() if target == name]
            if users:
                raise FailedPrecondition(f"adapter {name!r} is behind alias(es) {users}; move them first")
            self.backend.unload(name, last=len(self.adapters) == 1)
            del self.adapters[name]
            self._changed()
        log.info("unloaded adapter %s", name)

    def set_alias(self, alias: str, target: str) -> str:
        """Points `alias` at a model; returns the previous target ('' if new).

        Raises:
            NotFound: the target is not served. InvalidArgument: the alias names a model.
        """
        with self._lock:
            if alias == self.base_name or alias in self.adapters:
                raise InvalidArgument(f"{alias!r} is a model name, not an alias")
            if target != self.base_name and target not in self.adapters:
                raise NotFound(f"cannot point {alias!r} at {target!r}: no such model or adapter")
            previous = self.aliases.get(alias, "")
            if previous and previous != target:
                self.history.setdefault(alias, []).append(previous)
            self.aliases[alias] = target
            self._changed()
            return previous

    def rollback(self, alias: str) -> tuple[str, str]:
        """Moves `alias` back to its previous target; returns (new target, the one left).

        Raises:
            FailedPrecondition: the alias has no earlier target.
        """
        with self._lock:
            earlier = self.history.get(alias) or []
            while earlier and earlier[-1] != self.base_name and earlier[-1] not in self.adapters:
                earlier.pop()  # skip targets unloaded since
            if not earlier:
                raise FailedPrecondition(f"alias {alias!r} has no earlier target to roll back to")
            left = self.aliases[alias]
            self.aliases[alias] = earlier.pop()
            self._changed()
            return self.aliases[alias], left

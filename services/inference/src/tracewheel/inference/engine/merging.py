"""Forwards that use one adapter run on merged weights: W + scale * B @ A in each base layer.

PEFT's mixed-batch path (`adapter_names`) runs every adapted layer as the base matmul plus a
per-adapter gather, two small matmuls and a scatter. When every row of a forward uses the same
adapter (a prefill always does; a decode step does whenever the running requests agree, which
is the common case: an evaluation, or an alias's traffic), the engine instead swaps merged
weight tensors into the base layers and turns the LoRA branches off: the forward is the plain
model's (`bench/merged_adapters.py`). Steps with rows of different adapters go back to the
untouched base weights and PEFT's mixed-batch path.

The base weights are never modified: a merged set is a new tensor per layer, computed in fp32
and rounded once to the model's dtype, and switching is a pointer swap, so no rounding drifts
in however often the engine switches. The last `keep` merged sets are cached (a set costs one
copy of the adapted layers' weights). Adapters PEFT merges differently (DoRA and the other LoRA
variants, LoRA biases, layer types other than Linear) keep the mixed-batch path.

`reset` must run before PEFT changes the model (loading or deleting an adapter, unloading the
last one), so that PEFT sees its own base weights.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in adapter_names


def _lora_layers(model: Any) -> list[Any]:
    from peft.tuners.lora.layer import LoraLayer

    return [module for module in model.modules() if isinstance(module, LoraLayer)]


def _mergeable(layer: Any, adapter: str) -> bool:
    from peft.tuners.lora.layer import Linear

    if adapter not in layer.lora_A:
        return True  # the adapter leaves this layer as it is
    return (
        type(layer) is Linear
        and adapter not in getattr(layer, "lora_variant", {})
        and not getattr(layer, "lora_bias", {}).get(adapter, False)
    )


class MergedWeights:
    """Which weights the adapted layers hold for the next forward. Used under the engine's lock."""

    def __init__(self, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"keep must be 1 or more merged weight sets, got {keep}")
        self.keep = keep
        self.merges = 0  # merged sets computed (for benchmarks and tests)
        self._pristine: dict[Any, torch.Tensor] = {}  # layer -> its base weight, as loaded
        self._merged: OrderedDict[str, dict[Any, torch.Tensor]] = OrderedDict()
        self._unmergeable: set[str] = set()
        self._holding: str | None = None  # the adapter whose merged weights the layers hold (None: pristine)
        self._branches_on = True
        self._layers: list[Any] | None = None  # the model's LoRA layers, found once per reset

    def forward_kwargs(self, model: Any, adapters: list[str | None]) -> dict[str, Any]:
        """Sets the layers up for a forward whose rows use `adapters` (None: the base model);
        returns the keyword arguments the forward needs."""
        if self._layers is None:
            self._layers = _lora_layers(model)
        layers = self._layers
        names = set(adapters)
        if len(names) == 1:
            (adapter,) = names
            if adapter is None or self._merge(layers, adapter):
                self._hold(layers, adapter)
                self._branches(layers, on=False)
                return {}
        self._hold(layers, None)
        self._branches(layers, on=True)
        return {"adapter_names": [a or BASE_ADAPTER for a in adapters]}

    def reset(self, model: Any) -> None:
        """Puts the base weights back and the LoRA branches on, and drops every merged set."""
        layers = _lora_layers(model)
        self._hold(layers, None)
        self._branches(layers, on=True)
        self._layers = None
        self._pristine.clear()
        self._merged.clear()
        self._unmergeable.clear()

    def _merge(self, layers: list[Any], adapter: str) -> bool:
        """Makes sure the merged set of `adapter` is cached; False when it cannot be merged."""
        if adapter in self._merged:
            self._merged.move_to_end(adapter)
            return True
        if adapter in self._unmergeable:
            return False
        if not all(_mergeable(layer, adapter) for layer in layers):
            self._unmergeable.add(adapter)
            return False
        merged = {}
        with torch.inference_mode(False), torch.no_grad():  # plain tensors: they become parameters' data
            for layer in layers:
                if adapter not in layer.lora_A:
                    continue
                base = self._base_weight(layer)
                delta = layer.get_delta_weight(adapter).to(device=base.device, dtype=torch.float32)
                merged[layer] = (base.float() + delta).to(base.dtype)
        self._merged[adapter] = merged
        self.merges += 1
        while len(self._merged) > self.keep:
            evicted, _ = self._merged.popitem(last=False)
            if evicted == self._holding:
                self._hold(layers, None)
        return True

    def _base_weight(self, layer: Any) -> torch.Tensor:
        if layer not in self._pristine:  # first seen: nothing has swapped its weight yet
            self._pristine[layer] = layer.get_base_layer().weight.data
        return self._pristine[layer]

    def _hold(self, layers: list[Any], adapter: str | None) -> None:
        if adapter == self._holding:
            return
        merged = self._merged.get(adapter, {}) if adapter is not None else {}
        for layer in layers:
            weight = layer.get_base_layer().weight
            if layer in merged:
                self._base_weight(layer)
                weight.data = merged[layer]
            elif layer in self._pristine:
                weight.data = self._pristine[layer]
        self._holding = adapter

    def _branches(self, layers: list[Any], *, on: bool) -> None:
        if on == self._branches_on:
            return
        for layer in layers:
            layer.enable_adapters(on)
        self._branches_on = on

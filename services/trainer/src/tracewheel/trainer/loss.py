"""The SFT loss on pre-tokenized rows: the LM head scores labelled positions only, and each
assistant turn's act-or-answer decision can weigh more than an ordinary token.

Rows built by the dataset service carry labels (-100 off the target turns). TRL's loss is kept
for conversational rows; on pre-tokenized ones `DecisionWeightedSFTTrainer` changes two things:

1. Only positions whose next token is labelled go through the LM head (transformers'
   `logits_to_keep` with indices). TRL's fused head compacts the positions on Triton devices only;
   on CPU it projects every position, and in an agent row ~90 % of them are prompt (page
   snapshots, tool results) whose logits are thrown away. bench/train_step.py measures the gain.
2. The decision token of each assistant turn -- the first token after its think block: `<` of
   `<tool_call>` or the first word of the final answer -- has weight `decision_weight` (1 = plain
   token mean). In a demonstration of seven calls and an answer the stop decision is one token of
   ~300 supervised ones, and a small model trained on ten rows learns the navigation long before
   it learns when to stop (at weight 1 it never answered). Answer decisions (a turn that does not open
   `<tool_call>`) have their own weight, `answer_weight`: a row has one answer and several tool
   calls, so with one weight for both the model still learns "always act".

The loss is normalised as TRL's: by the number of labelled tokens in the accumulated batch, so
with `decision_weight` 1 it is the same loss (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from trl import SFTTrainer

from tracewheel.trainer.prefix_tree import TREE_MASK_KEY

IGNORE = -100
THINK_CLOSE = "</think>"
TOOL_CALL_OPEN = "<tool_call>"  # hermes format (ARCHITECTURE.md): a turn that acts opens with it


def labelled_spans(labels: Sequence[int]) -> list[tuple[int, int]]:
    """(start, end) of each run of labelled positions (not IGNORE): one assistant turn each."""
    spans: list[tuple[int, int]] = []
    position = 0
    while position < len(labels):
        if labels[position] == IGNORE:
            position += 1
            continue
        end = position
        while end < len(labels) and labels[end] != IGNORE:
            end += 1
        spans.append((position, end))
        position = end
    return spans


def decision_mask(targets: torch.Tensor, think_close: Sequence[int], is_blank: Callable[[int], bool]) -> torch.Tensor:
    """Each labelled span's decision token, in `targets` (shifted labels, batch x length).

    A span is a run of labelled positions (one assistant turn). Its decision is the first token
    after the span's first `think_close` token sequence that is not blank (whitespace), or the
    span's first token when it has no think block.
    """
    decisions = torch.zeros_like(targets, dtype=torch.bool)
    width = len(think_close)
    for row, labels in enumerate(targets.tolist()):
        for position, end in labelled_spans(labels):
            span = labels[position:end]
            decision = 0
            for start in range(len(span) - width + 1 if width else 0):
                if span[start : start + width] == list(think_close):
                    decision = start + width
                    while decision < len(span) and is_blank(span[decision]):
                        decision += 1
                    break
            if decision < len(span):
                decisions[row, position + decision] = True
    return decisions


def answer_mask(targets: torch.Tensor, decisions: torch.Tensor, tool_call_open: Sequence[int]) -> torch.Tensor:
    """The decisions that do not open a tool call: the turn answers instead of acting."""
    answers = decisions.clone()
    width = len(tool_call_open)
    for row, position in decisions.nonzero().tolist():
        if targets[row, position : position + width].tolist() == list(tool_call_open):
            answers[row, position] = False
    return answers


def decision_weights(
    targets: torch.Tensor,
    decisions: torch.Tensor,
    tool_call_open: Sequence[int],
    decision_weight: float,
    answer_weight: float,
) -> torch.Tensor:
    """Per-position loss weights: 1, `decision_weight` at tool-call decisions, `answer_weight` at answers."""
    weights = torch.where(decisions, decision_weight, 1.0)
    return torch.where(answer_mask(targets, decisions, tool_call_open), answer_weight, weights)


def weighted_token_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, normaliser: torch.Tensor | int
) -> torch.Tensor:
    """sum(weight * cross-entropy) / normaliser over positions whose target is not -100."""
    per_token = F.cross_entropy(logits.float().transpose(1, 2), targets.clamp(min=0), reduction="none")
    weights = weights * (targets != IGNORE)
    return (per_token * weights).sum() / torch.as_tensor(normaliser, device=per_token.device).clamp(min=1)


class DecisionWeightedSFTTrainer(SFTTrainer):  # type: ignore[misc]
    """SFTTrainer whose loss on pre-tokenized rows is the module docstring's."""

    def __init__(
        self,
        *args: Any,
        decision_weight: float = 1.0,
        answer_weight: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.decision_weight = decision_weight
        self.answer_weight = decision_weight if answer_weight is None else answer_weight
        self._think_close = self.processing_class.encode(THINK_CLOSE, add_special_tokens=False)
        self._tool_call_open = self.processing_class.encode(TOOL_CALL_OPEN, add_special_tokens=False)
        self._blank: dict[int, bool] = {}

    def _is_blank(self, token: int) -> bool:
        if token not in self._blank:
            self._blank[token] = not self.processing_class.decode([token]).strip()
        return self._blank[token]

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        if TREE_MASK_KEY in inputs:  # prefix-tree rows (prefix_tree.py): the mask goes in as a custom 4D mask
            mask = inputs[TREE_MASK_KEY]
            inputs = {key: value for key, value in inputs.items() if key != TREE_MASK_KEY} | {"attention_mask": mask}
        if return_outputs or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        targets = inputs["labels"][:, 1:]
        labelled = targets != IGNORE
        keep = labelled.any(dim=0).nonzero().squeeze(1)  # positions any row of the batch is scored at
        forward = {key: value for key, value in inputs.items() if key != "labels"}
        logits = model(**forward, use_cache=False, logits_to_keep=keep).logits
        kept = targets[:, keep]
        decisions = decision_mask(targets, self._think_close, self._is_blank)
        weights = decision_weights(targets, decisions, self._tool_call_open, self.decision_weight, self.answer_weight)
        weights, decisions = weights[:, keep].to(logits.device), decisions[:, keep]
        normaliser = labelled.sum() if num_items_in_batch is None else num_items_in_batch
        loss = weighted_token_loss(logits, kept, weights, normaliser)
        self._record_metrics(inputs, logits, kept, decisions)
        return loss

    def _record_metrics(
        self, inputs: dict[str, Any], logits: torch.Tensor, kept: torch.Tensor, decisions: torch.Tensor
    ) -> None:
        """Token and decision accuracy (top-1) for TRL's logs, and the trained-token count."""
        mode = "train" if self.model.training else "eval"
        with torch.no_grad():
            correct = (logits.argmax(-1) == kept) & (kept != IGNORE)
            labelled = int((kept != IGNORE).sum())
            self._metrics[mode]["mean_token_accuracy"].append(int(correct.sum()) / max(labelled, 1))
            if decisions.any():
                self._metrics[mode]["decision_accuracy"].append(float(correct[decisions].float().mean()))
        if mode == "train" and "attention_mask" in inputs:
            mask = inputs["attention_mask"]
            # a 4D prefix-tree mask: every token attends to itself, so its diagonal counts the tokens (and padding)
            self._total_train_tokens += int(mask.diagonal(dim1=-2, dim2=-1).sum() if mask.dim() == 4 else mask.sum())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

"""One direction of a Transformer contextualiser: blocks of causal self-attention.

Peters, Neumann, Zettlemoyer and Yih (2018, "Dissecting Contextual Word Embeddings") trained
biLMs whose LSTMs were replaced by Transformers, with the same character CNN and softmax; this is
that contextualiser. Each block (Vaswani et al., 2017, Sec. 3.1) is self-attention then a
position-wise feed-forward network, each with a residual connection:

    x = x + Dropout(Attention(LayerNorm(x)))        the attention reads keys j <= i only
    x = x + Dropout(FFN(LayerNorm(x)))               FFN(y) = W_2 GELU(W_1 y + b_1) + b_2

The norm comes before each sub-layer (pre-norm), not after the residual sum as in Vaswani et al.:
Xiong et al. (2020, "On Layer Normalization in the Transformer Architecture", Sec. 3) show that
post-norm's gradients near the output are large at initialisation, so it needs a learning-rate
warm-up to train at all, while pre-norm's are well behaved without one, so it also trains
under the paper's recipe (`optim=bilm_tf`: Adagrad at a constant 0.2, no warm-up).
Pre-norm leaves the residual stream unnormalised, so a final LayerNorm follows the last block.

ELMo layers. Layer k of a direction is the residual stream after block k, what block k + 1
reads; the top one passes through the final LayerNorm, since that is what the softmax reads
(the convention of GPT-2's hidden states). All are D wide, like the token layer, so the biLM's
layers can be mixed.

Directions. One class serves both: the forward LM attends to the left. For the backward LM each
row is reversed within its length (``reverse_padded``), read left to right, and reversed back,
exactly as a training stream's backward windows (which hold reversed text) are read, so that
positions count the same way in training and in use. No state is carried between calls: a
training stream's windows are read independently.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from elmo.config import TransformerConfig
from elmo.modules.attention import CausalSelfAttention, attention_mask, causal_mask
from elmo.modules.contextualizer import Contextualizer, ContextualizerOutput
from elmo.modules.positions import build_position_encoding
from elmo.modules.sequence import lengths_from_mask, reverse_padded


class TransformerBlock(nn.Module):
    """One pre-norm block: self-attention and a feed-forward network, each around a residual.

    Args:
        config: width, heads, feed-forward size, dropout.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        dim = config.model_dim
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = CausalSelfAttention(dim, config.num_heads, config.dropout)
        self.feedforward_norm = nn.LayerNorm(dim)
        self.feedforward_in = nn.Linear(dim, config.feedforward_dim)
        self.feedforward_out = nn.Linear(config.feedforward_dim, dim)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D); ``mask`` as ``CausalSelfAttention.forward`` takes it."""
        x = inputs + self.dropout(self.attention(self.attention_norm(inputs), mask))
        hidden = nn.functional.gelu(self.feedforward_in(self.feedforward_norm(x)))  # (B, T, F)
        return x + self.dropout(self.feedforward_out(hidden))


class TransformerStack(Contextualizer):
    """N ``TransformerBlock``s that read each row in one direction; a stateless contextualiser.

    Args:
        config: the blocks' sizes, dropout and position encoding.
        input_dim: D of the token vectors; must be the blocks' width (``model_dim``).
    """

    carries_state = False

    def __init__(self, config: TransformerConfig, input_dim: int) -> None:
        super().__init__()
        if input_dim != config.model_dim:
            raise ValueError(
                f"the token vectors are {input_dim} wide but transformer.model_dim is "
                f"{config.model_dim}; they must be equal (the ELMo layers are mixed)"
            )
        self.config = config
        self.positions = build_position_encoding(
            config.position_encoding, config.model_dim, config.num_heads
        )
        self.input_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.model_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # GPT-2's initialisation (Radford et al., 2019, Sec. 2.3): weights N(0, 0.02), and the
        # two projections that write into the residual stream scaled by 1/sqrt(2N), so the
        # stream's variance does not grow with depth at the start.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            for layer in (block.attention.output, block.feedforward_out):
                nn.init.normal_(layer.weight, std=0.02 / math.sqrt(2 * len(self.blocks)))

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    @property
    def output_dim(self) -> int:
        return self.config.model_dim

    def layer_parameters(self, index: int) -> list[nn.Parameter]:
        """Block ``index``'s parameters; the top layer's include the final LayerNorm."""
        parameters = list(self.blocks[index].parameters())
        if index == len(self.blocks) - 1:
            parameters += list(self.final_norm.parameters())
        return parameters

    def initial_state(self, batch_size: int, reference: torch.Tensor) -> None:
        """None: a Transformer carries no state between calls."""

    def state_from_tensors(self, tensors: list[torch.Tensor]) -> None:
        raise ValueError("a Transformer contextualiser has no state to restore")

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor, state: None = None, reverse: bool = False
    ) -> ContextualizerOutput:
        """Every block's outputs.

        Args:
            tokens: (B, T, D) token vectors; mask: (B, T) bool, True for real tokens, which come
                first in each row.
            state: must be None (stateless; a state is refused with a ValueError).
            reverse: read each row from its last real token to its first (the backward LM).

        Returns:
            N layers (B, T, D), zero at padding, and state None.
        """
        if state is not None:
            raise ValueError(
                "a Transformer contextualiser carries no state between calls (stateful use has "
                "no meaning for it): pass state=None"
            )
        lengths = lengths_from_mask(mask)  # (B,)
        if reverse:
            tokens = reverse_padded(tokens, lengths)  # (B, T, D), padding stays at the end
        x = self.input_dropout(self.positions.embed(tokens))  # (B, T, D)
        bias = self.positions.attention_bias(x.shape[1], x.device, torch.float32)  # (H, T, T)
        scores_mask = attention_mask(causal_mask(mask), bias, x.dtype)  # (B, 1 or H, T, T)
        keep = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        layers = []
        for index, block in enumerate(self.blocks):
            x = block(x, scores_mask)  # (B, T, D)
            top = index == len(self.blocks) - 1
            layer = (self.final_norm(x) if top else x) * keep  # zero at padding
            layers.append(reverse_padded(layer, lengths) if reverse else layer)
        return ContextualizerOutput(layers, None)

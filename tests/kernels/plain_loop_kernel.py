"""A recurrence kernel written the way a new one is: one file, one registry line in its test.

It runs each layer's step loop with the plain products of the reference order of operations
(``LstmLayer.reference_step``: ``linear`` per step, nothing prepacked or hoisted) and the two
directions one after the other: the slow, obvious oracle of the exact kernel.
"""

from __future__ import annotations

from elmo.kernels.base import RecurrenceKernel


class PlainLoopKernel(RecurrenceKernel):
    name = "plain-loop"
    exact = True

    def run_layer(self, layer, inputs, lengths, state, reverse):
        return layer(inputs, lengths, state, reverse, step=layer.reference_step(inputs))

    def run_directions(self, forward, backward, tokens, training):
        return forward(), backward()

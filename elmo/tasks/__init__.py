"""What the embeddings are worth: probes and downstream tasks on a frozen or fine-tuned biLM.

``elmo-probe task=<pos|chunk|wic|wordsim|sst2> model=DIR`` (``elmo/probe.py``) builds a
ProbeConfig (``config.py``) and hands it to ``run.run_probe``. Below that:

* ``datasets/``: readers for the task files (CoNLL-U, CoNLL-2000, WiC, word pairs, SST-2), no
  nn code;
* ``features.py``: frozen biLM layers for tokens, target words and word types;
* ``linear.py``: softmax-regression probes on one layer or a learned scalar mix;
* ``threshold.py``, ``metrics.py``: the cosine-threshold classifier and the scores;
* ``sentence_classifier.py``, ``finetune.py``: the SST-2 model, frozen or fine-tuned;
* ``tagging.py``: per-token probes on every layer and the mix, shared by POS and chunking;
* ``pos.py``, ``chunk.py``, ``wic.py``, ``wordsim.py``, ``sst2.py``: one task each, from files
  to metrics;
* ``models.py``: the model under test and its baselines; ``report.py``: JSON and markdown.
"""

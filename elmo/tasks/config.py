"""Typed configuration of ``elmo-probe``: the run (ProbeConfig) and one schema per task.

Same conventions as ``elmo/config.py``: every setting is defined once, here, with its meaning and
unit; YAML files under ``configs/probe/`` hold values only; no Hydra import. ``elmo/probe.py``
registers ``ProbeConfig`` and each task schema (group ``task``) with Hydra's ConfigStore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

SST2_MODES = ("frozen", "finetune")
SST2_ENCODERS = ("pool", "bilstm")


@dataclass
class ProbeTrainingConfig:
    """Training a linear probe (softmax regression) on cached features with Adam."""

    epochs: int = 5  # passes over the training features
    batch_size: int = 256  # examples (tokens or pairs) per Adam step
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # L2 penalty on the probe's weights
    seed: int = 0  # seeds the probe's initialisation and the order of its minibatches


@dataclass
class PosTaskConfig:
    """POS tagging on Universal Dependencies (UPOS): a linear probe per layer and on the mix."""

    name: str = "pos"  # the task's name in results and the output directory
    data_dir: str = "ud-english-ewt"  # relative: ./data, ../shared/data, the cache (elmo.hub)
    train: str = "en_ewt-ud-train.conllu"  # CoNLL-U files inside data_dir
    dev: str = "en_ewt-ud-dev.conllu"
    test: str | None = "en_ewt-ud-test.conllu"  # null = report dev only
    # Train on a random (seeded) subset of this many sentences; null = all. The feature cache
    # holds N_tokens x L x 2D floats (EWT train: 204k tokens; 0.6 GB for 2D = 256).
    max_train_sentences: int | None = None
    probe: ProbeTrainingConfig = field(default_factory=ProbeTrainingConfig)


@dataclass
class ChunkTaskConfig:
    """Chunking on CoNLL-2000 (IOB2 tags): a linear probe per layer and on the mix; span F1."""

    name: str = "chunk"
    data_dir: str = "conll2000"
    train: str = "train.txt"  # CoNLL-2000 files inside data_dir ('word POS chunk-tag' lines)
    test: str | None = "test.txt"  # null = report dev only
    # CoNLL-2000 has no dev split: the last dev_sentences sentences of train.txt are held out as
    # dev (the same ones on every run; WSJ articles are contiguous, so dev shares few with train).
    dev_sentences: int = 1000
    # Train on a random (seeded) subset of this many of the remaining sentences; null = all.
    max_train_sentences: int | None = None
    probe: ProbeTrainingConfig = field(default_factory=ProbeTrainingConfig)


@dataclass
class WicTaskConfig:
    """Word in Context: the target word's vectors in two sentences -> same sense or not."""

    name: str = "wic"
    data_dir: str = "wic"
    train: str = "train/train.data.txt"  # data and gold files inside data_dir
    train_gold: str = "train/train.gold.txt"
    dev: str = "dev/dev.data.txt"
    dev_gold: str = "dev/dev.gold.txt"  # the test gold is not public: WiC reports dev
    max_train_examples: int | None = None  # random (seeded) subset of train pairs; null = all
    # The logistic regression on [u * v, |u - v|, cos(u, v)] (4D + 1 features, 5.4k pairs).
    probe: ProbeTrainingConfig = field(
        default_factory=lambda: ProbeTrainingConfig(epochs=30, batch_size=64, weight_decay=0.0)
    )


def _word_similarity_files() -> dict[str, str]:
    return {
        "WS-353": "faruqui/EN-WS-353-ALL.txt",
        "WS-353-SIM": "faruqui/EN-WS-353-SIM.txt",
        "WS-353-REL": "faruqui/EN-WS-353-REL.txt",
        "SimLex-999": "faruqui/EN-SIMLEX-999.txt",
        "MEN": "faruqui/EN-MEN-TR-3k.txt",
        "RW": "faruqui/EN-RW-STANFORD.txt",
        "SimVerb-3500": "faruqui/EN-SimVerb-3500.txt",
        "MTurk-771": "faruqui/EN-MTurk-771.txt",
        "MTurk-287": "faruqui/EN-MTurk-287.txt",
        "RG-65": "faruqui/EN-RG-65.txt",
        "MC-30": "faruqui/EN-MC-30.txt",
        "YP-130": "faruqui/EN-YP-130.txt",
        "VERB-143": "faruqui/EN-VERB-143.txt",
    }


@dataclass
class WordSimTaskConfig:
    """Word similarity: Spearman's rho between cosines of layer-0 type vectors and human scores."""

    name: str = "wordsim"
    data_dir: str = "word-similarity"
    # The benchmarks to score, by name in ``files``.
    datasets: list[str] = field(
        default_factory=lambda: ["WS-353", "SimLex-999", "MEN", "RW", "SimVerb-3500"]
    )
    # Benchmark name -> file inside data_dir (one 'word1 word2 score' per line). Add one with
    # +task.files.NAME=PATH task.datasets=[NAME].
    files: dict[str, str] = field(default_factory=_word_similarity_files)
    lowercase: bool = False  # lower-case the words first (the character encoder is cased)


@dataclass
class Sst2TaskConfig:
    """SST-2 sentiment: ELMo (scalar mix) -> pooled or BiLSTM encoder -> classifier."""

    name: str = "sst2"
    data_dir: str = "sst2"
    train: str = "train.tsv"  # GLUE files inside data_dir (test labels are hidden: dev is reported)
    dev: str = "dev.tsv"
    # Random (seeded) subsets; they bound the CPU cost (the 67k train rows are mostly phrases).
    max_train_examples: int | None = 4000
    max_dev_examples: int | None = None  # null = the whole dev set (872 sentences)
    mode: str = "frozen"  # frozen (cached biLM layers) | finetune (the biLM is trained too)
    representations: list[str] = field(default_factory=lambda: ["mix"])  # mix and/or layer<k>
    encoder: str = "pool"  # pool (masked mean ++ max over tokens) | bilstm (then pooled)
    encoder_hidden_size: int = 64  # H of the BiLSTM encoder, per direction
    dropout: float = 0.2  # on the ELMo representation and before the output layer
    epochs: int = 3  # passes over the training examples
    batch_size: int = 32  # sentences per step
    lr: float = 1e-3  # Adam learning rate of the new parameters (mix, encoder, output layer)
    bilm_lr: float = 1e-5  # finetune: Adam learning rate of the pretrained biLM parameters
    # finetune: 0 = the whole biLM trains from the first step; N > 0 = gradual unfreezing, top
    # layer first: only the new parameters train for N steps, then one more biLM layer (top LSTM
    # layer, ..., the character encoder last) joins every N steps.
    unfreeze_every: int = 0
    weight_decay: float = 0.0  # decoupled (AdamW) weight decay of every parameter
    seed: int = 0  # seeds the subsets, the classifier's initialisation and the batch order


TASK_CONFIGS = {
    "pos": PosTaskConfig,
    "chunk": ChunkTaskConfig,
    "wic": WicTaskConfig,
    "wordsim": WordSimTaskConfig,
    "sst2": Sst2TaskConfig,
}


@dataclass
class BaselinesConfig:
    """Other models run through the same code path and reported in the same table."""

    random: bool = True  # a randomly initialised biLM of the model's shape
    random_seed: int = 0  # seeds the random biLM's weights
    # Another model to compare against: a published-format directory (options.json +
    # weights.hdf5), one of ours, or a published model's name (elmo-original, ...); null = none.
    # (Layer 0 of the model itself is always a row.)
    published: str | None = None


@dataclass
class ProbeConfig:
    """Everything ``elmo-probe`` needs; composed by Hydra from configs/probe/probe.yaml."""

    task: Any = MISSING  # one of TASK_CONFIGS, chosen with task=<pos|chunk|wic|wordsim|sst2>
    model: str = MISSING  # our pretrained directory, a published-format one, or a model's name
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    batch_size: int = 64  # sentences per biLM forward pass when embedding
    device: str = "cpu"  # where the biLM runs (probes on cached features train on the CPU)
    num_threads: int | None = None  # torch CPU threads; null = torch's default
    # the biLM's recurrence kernel (elmo.kernels): exact (bit-exact), fused or bf16 (not exact)
    kernel: str = "exact"
    output_dir: str = "outputs/probe"  # results.json, results.md and Hydra's logs

    def validate(self) -> ProbeConfig:
        """Raise ValueError naming the first bad value; return self."""
        if not isinstance(self.task, tuple(TASK_CONFIGS.values())):
            raise ValueError(  # noqa: TRY004  (a bad config value, reported as all the others)
                f"task must be one of {sorted(TASK_CONFIGS)}, got {self.task!r}"
            )
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {self.batch_size}")
        from elmo.kernels import kernel_names  # a registry, imported lazily as in elmo.config

        if self.kernel not in kernel_names():
            raise ValueError(f"kernel must be one of {kernel_names()}, got {self.kernel!r}")
        finetunes = isinstance(self.task, Sst2TaskConfig) and self.task.mode == "finetune"
        if finetunes and self.kernel not in kernel_names(training=True):
            raise ValueError(
                f"kernel={self.kernel} is an inference kernel, and task.mode=finetune trains the "
                f"biLM: use kernel={' or kernel='.join(kernel_names(training=True))}"
            )
        probe = getattr(self.task, "probe", None)
        if probe is not None:
            for name in ("epochs", "batch_size"):
                if getattr(probe, name) <= 0:
                    raise ValueError(f"task.probe.{name} must be > 0, got {getattr(probe, name)}")
            if probe.lr <= 0:
                raise ValueError(f"task.probe.lr must be > 0, got {probe.lr}")
        if isinstance(self.task, Sst2TaskConfig):
            _validate_sst2(self.task)
        if isinstance(self.task, WordSimTaskConfig):
            _validate_wordsim(self.task)
        if isinstance(self.task, ChunkTaskConfig) and self.task.dev_sentences <= 0:
            raise ValueError(f"task.dev_sentences must be > 0, got {self.task.dev_sentences}")
        return self


def _validate_wordsim(task: WordSimTaskConfig) -> None:
    if not task.datasets:
        raise ValueError("task.datasets must name at least one benchmark of task.files")
    unknown = [name for name in task.datasets if name not in task.files]
    if unknown:
        raise ValueError(f"task.datasets {unknown} are not in task.files {sorted(task.files)}")


def _validate_sst2(task: Sst2TaskConfig) -> None:
    if task.mode not in SST2_MODES:
        raise ValueError(f"task.mode must be one of {SST2_MODES}, got {task.mode!r}")
    if task.encoder not in SST2_ENCODERS:
        raise ValueError(f"task.encoder must be one of {SST2_ENCODERS}, got {task.encoder!r}")
    for name in ("epochs", "batch_size", "encoder_hidden_size"):
        if getattr(task, name) <= 0:
            raise ValueError(f"task.{name} must be > 0, got {getattr(task, name)}")
    for name in ("lr", "bilm_lr"):
        if getattr(task, name) <= 0:
            raise ValueError(f"task.{name} must be > 0, got {getattr(task, name)}")
    if task.unfreeze_every < 0:
        raise ValueError(f"task.unfreeze_every must be >= 0, got {task.unfreeze_every}")
    if not 0.0 <= task.dropout < 1.0:
        raise ValueError(f"task.dropout must be in [0, 1), got {task.dropout}")
    if not task.representations:
        raise ValueError("task.representations must list at least one of mix, layer0, layer1, ...")

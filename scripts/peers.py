"""The two reference implementations of ELMo, set up in a scratch folder for bench_peers.py.

Nothing here goes into the repository, and only ``pip`` reaches the network:

* **ELMoForManyLangs** 0.0.4.post2 (HIT-SCIR), from the package index into
  ``SCRATCH/manylangs`` (``pip install --target --no-deps``: its ``torch`` requirement would
  pull another torch; it needs h5py and numpy, which are here, and ``overrides``, which the
  patches drop). Patched for torch 2.x: ``.data[0]`` -> ``.item()``, ``clip_grad_norm`` ->
  ``clip_grad_norm_``, ``size_average=False`` -> ``reduction='sum'``, and no ``@overrides``.
* **AllenNLP's ELMo modules**, copied from a git copy of allenai/allennlp (``--allennlp-git``,
  its git directory, e.g. the one the session's ``fetch`` tool brings: nothing is downloaded)
  into ``SCRATCH/allennlp``: ``modules/{elmo,elmo_lstm,encoder_base,highway,
  lstm_cell_with_projection,scalar_mix}.py`` whole, and from ``nn/util.py``,
  ``nn/initializers.py``, ``common/{checks,util}.py`` and ``data/token_indexers/elmo_indexer.py``
  only the definitions those modules reach (``trim_module``: the helpers, ``block_orthogonal``,
  ``ConfigurationError``, ``lazy_groups_of``, ``ELMoCharacterMapper``), so that they import with
  torch, numpy and h5py alone. ``elmo.py`` loses its imports of the data pipeline (``Instance``,
  ``Batch``, ``Vocabulary``, ...: only ``batch_to_ids`` uses them; the driver in bench_peers.py
  builds the character ids with ``ELMoCharacterMapper``, as ``ELMoTokenCharactersIndexer``
  does), ``cached_path`` becomes ``str`` (local files only) and ``FromParams`` ``object``.
* **Models**, per shape, in ``SCRATCH/models/<shape>/``: random weights in the published format
  (``options.json`` + ``weights.hdf5``, ``elmo.published.write_random_published``, seed 0), which
  ours and AllenNLP read, and the *same* weights as an ELMoForManyLangs model folder
  (``manylangs/``: ``config.json``, ``cnn.json``, ``char.dic``, ``token_embedder.pkl``,
  ``encoder.pkl``), converted through AllenNLP's loader (``convert``): character-only
  (``word_dim`` 0), like the published AllenNLP models (ELMoForManyLangs' own published models
  add a 100-d word embedding and use 50-d characters). Its ``char.dic`` gives each character the
  id AllenNLP gives its byte, so on ASCII text all three compute the same function; ``convert``
  checks that on a first batch (ELMoForManyLangs names its begin-of-word id ``<eow>`` and its
  end-of-word id ``<bow>``, ``frontend.create_one_batch``; the ids follow that). Non-ASCII
  characters are one id there and several bytes here, so their vectors differ.

    python scripts/peers.py --allennlp-git /work/.mirror/allenai+allennlp/repo --shapes small,original
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bench_embed import shape_config, without_elmo_settings  # a sibling script

SCRATCH = Path("/tmp/elmo_peers")
MANYLANGS = "ELMoForManyLangs==0.0.4.post2"
MANYLANGS_PATCHES = [(".data[0]", ".item()"), ("clip_grad_norm(", "clip_grad_norm_("),
                     ("size_average=False", "reduction='sum'")]  # fmt: skip
ALLENNLP_MODULES = ["elmo", "elmo_lstm", "encoder_base", "highway", "lstm_cell_with_projection",
                    "scalar_mix"]  # fmt: skip
# Edits of the whole modules (each must apply somewhere: a changed upstream is an error).
ALLENNLP_PATCHES = [
    ("from allennlp.common import FromParams\n", "FromParams = object  # trimmed\n"),
    ("from allennlp.common.file_utils import cached_path\n",
     "cached_path = str  # trimmed: local files only\n"),
    ("from allennlp.data.instance import Instance\n", ""),
    ("from allennlp.data.tokenizers.token_class import Token\n", ""),
    ("from allennlp.data.vocabulary import Vocabulary\n", ""),
    ("from allennlp.data.batch import Batch\n", ""),
    ("from allennlp.data.fields import TextField\n", ""),
    ("    ELMoTokenCharactersIndexer,\n", ""),
]  # fmt: skip
MAX_CHARACTERS = 50  # per token, with the begin- and end-of-word marks (both implementations)


def setup(scratch: Path, allennlp_git: Path | None, shapes: list[str]) -> dict[str, Path]:
    """Everything bench_peers.py needs, made once (each part is skipped when present).

    Returns:
        {"manylangs": its sys.path folder, "allennlp": its sys.path folder, "models": the folder
        of SCRATCH/models/<shape>/}.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    paths = {"manylangs": install_manylangs(scratch / "manylangs"),
             "allennlp": copy_allennlp(allennlp_git, scratch / "allennlp"),
             "models": scratch / "models"}  # fmt: skip
    for shape in shapes:
        write_models(shape, paths)
    return paths


def install_manylangs(folder: Path) -> Path:
    """ELMoForManyLangs from the package index into ``folder``, patched (module docstring)."""
    marker = folder / ".patched"
    if marker.exists():
        return folder
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(folder), MANYLANGS], check=True)  # fmt: skip
    for path in sorted((folder / "elmoformanylangs").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for old, new in MANYLANGS_PATCHES:
            text = text.replace(old, new)
        text = re.sub(r"(?m)^\s*(from overrides import overrides|@overrides)\s*\n", "", text)
        path.write_text(text, encoding="utf-8")
    marker.write_text(MANYLANGS + "\n")
    return folder


def copy_allennlp(git_dir: Path | None, folder: Path) -> Path:
    """AllenNLP's ELMo modules from ``git_dir`` (HEAD), trimmed (module docstring), into ``folder``."""
    marker = folder / ".trimmed"
    if marker.exists():
        return folder
    if git_dir is None:
        raise SystemExit(f"{folder} is not set up: pass --allennlp-git (a git copy of "
                         "allenai/allennlp, e.g. from the fetch tool)")  # fmt: skip
    commit = _git(git_dir, "rev-parse", "HEAD").strip()
    files = {f"allennlp/modules/{name}.py": _git(git_dir, "show", f"HEAD:allennlp/modules/{name}.py")
             for name in ALLENNLP_MODULES}  # fmt: skip
    for old, new in ALLENNLP_PATCHES:
        hits = [path for path, text in files.items() if old in text]
        if not hits:
            raise SystemExit(f"allennlp {commit[:10]}: no {old.strip()!r} to patch; update ALLENNLP_PATCHES")
        for path in hits:
            files[path] = files[path].replace(old, new)
    wanted: dict[str, set[str]] = {}
    for text in files.values():
        _add_allennlp_imports(ast.parse(text), wanted)
    sources: dict[str, str] = {}
    trimmed: dict[str, str] = {}
    before = None
    while before != wanted:  # until no trimmed module asks for a name more
        before = {module: set(names) for module, names in wanted.items()}
        for module in before:
            sources.setdefault(module, _git(git_dir, "show", f"HEAD:{module}"))
            trimmed[module] = trim_module(sources[module], wanted[module], wanted)
    for path, text in {**trimmed, **files}.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        for package in target.relative_to(folder).parents:
            if package != Path("."):
                (folder / package / "__init__.py").touch()
    marker.write_text(f"allenai/allennlp {commit}\n")
    return folder


def trim_module(source: str, names: set[str], wanted: dict[str, set[str]]) -> str:
    """``source`` cut down to the top-level definitions ``names`` need, and the imports they use.

    Definitions (functions, classes, assignments) are kept whole, in their order; a name they use
    that another allennlp module defines is added to ``wanted`` (its path -> names), for the caller
    to trim that module in turn.
    """
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    definitions = {name: node for node in tree.body for name in _bound_names(node)
                   if not isinstance(node, (ast.Import, ast.ImportFrom))}  # fmt: skip
    imports = {alias.asname or alias.name.split(".")[0]: (node, alias)
               for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
               for alias in node.names}  # fmt: skip
    kept, queue, used_imports = set(), list(names), {}
    while queue:
        name = queue.pop()
        if name in imports and name not in definitions:  # a name the module imports itself
            used_imports[name] = imports[name]
        if name in kept or name not in definitions:
            continue
        kept.add(name)
        for used in _used_names(definitions[name]):
            if used in definitions:
                queue.append(used)
            elif used in imports:
                used_imports[used] = imports[used]
    header = []
    for node, alias in used_imports.values():
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("allennlp"):
            wanted.setdefault(_module_path(node.module), set()).add(alias.name)
        as_part = f" as {alias.asname}" if alias.asname else ""
        if isinstance(node, ast.ImportFrom):
            header.append(f"from {'.' * node.level}{node.module} import {alias.name}{as_part}\n")
        else:
            header.append(f"import {alias.name}{as_part}\n")
    body = []
    for node in tree.body:
        if set(_bound_names(node)) & kept:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            body.append("".join(lines[start - 1 : node.end_lineno]) + "\n\n")
    return "# Trimmed from allennlp (scripts/peers.py): only what the ELMo modules use.\n" + \
        "".join(sorted(header)) + "\n\n" + "".join(body)  # fmt: skip


def _add_allennlp_imports(tree: ast.Module, wanted: dict[str, set[str]]) -> None:
    """Record what a whole module imports from allennlp (a name, or a module's attributes)."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("allennlp.modules"):
            continue  # the whole modules, copied as they are
        if not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("allennlp")):
            continue
        for alias in node.names:
            if alias.name == "util" and node.module == "allennlp.nn":  # ``util.f`` calls
                attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                              and isinstance(n.value, ast.Name) and n.value.id == "util"}  # fmt: skip
                wanted.setdefault("allennlp/nn/util.py", set()).update(attributes)
            else:
                wanted.setdefault(_module_path(node.module), set()).add(alias.name)


def _module_path(module: str) -> str:
    return module.replace(".", "/") + ".py"


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _git(git_dir: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def peer_environment(paths: dict[str, Path], threads: int) -> dict:
    """A child's environment: both peers importable, the thread count, and none of the process
    settings `import elmo` made in this process (the peers run as their users run them)."""
    python_path = [str(paths["allennlp"]), str(paths["manylangs"]), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path),
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}  # fmt: skip
    return without_elmo_settings(env)



def write_models(shape: str, paths: dict[str, Path]) -> Path:
    """SCRATCH/models/<shape>/: the published files (seed 0) and ELMoForManyLangs' folder."""
    from elmo.published import write_random_published

    folder = paths["models"] / shape
    manylangs = folder / "manylangs"
    if (manylangs / "encoder.pkl").exists():
        return folder
    options, weights = write_random_published(shape_config(shape), folder, seed=0)
    command = [sys.executable, __file__, "convert", str(options), str(weights), str(manylangs)]
    subprocess.run(command, check=True, env=peer_environment(paths, threads=2))
    return folder


# ------------------------------------------------------------------------------------------------
# Conversion (run in a child that imports both peers)


def convert(options_file: Path, weight_file: Path, folder: Path) -> None:
    """Write the published weights as an ELMoForManyLangs model folder, and check the three agree."""
    import torch
    from allennlp.modules.elmo import _ElmoBiLm
    from elmoformanylangs.frontend import Model
    from elmoformanylangs.modules.embedding_layer import EmbeddingLayer

    options = json.loads(options_file.read_text())
    reference = _ElmoBiLm(str(options_file), str(weight_file), requires_grad=False).eval()
    folder.mkdir(parents=True, exist_ok=True)
    config = manylangs_config(options)
    (folder / "cnn.json").write_text(json.dumps(config, indent=1))
    (folder / "config.json").write_text(json.dumps({"config_path": "cnn.json"}))
    characters = manylangs_characters()
    (folder / "char.dic").write_text("".join(f"{c}\t{i}\n" for c, i in characters.items()),
                                     encoding="utf-8")  # fmt: skip
    chars = EmbeddingLayer(config["token_embedder"]["char_dim"], characters, fix_emb=False)
    model = Model(config, None, chars, use_cuda=False)
    encoder = reference._token_embedder
    token_state = {"char_emb_layer.embedding.weight": encoder._char_embedding_weights,
                   "projection.weight": encoder._projection.weight,
                   "projection.bias": encoder._projection.bias}  # fmt: skip
    for i in range(len(options["char_cnn"]["filters"])):
        for kind in ("weight", "bias"):
            token_state[f"convolutions.{i}.{kind}"] = getattr(encoder, f"char_conv_{i}").state_dict()[kind]
    for key, value in encoder._highways.state_dict().items():
        token_state[f"highways.{key}"] = value
    model.token_embedder.load_state_dict(token_state, strict=True)
    model.encoder.load_state_dict(reference._elmo_lstm.state_dict(), strict=True)
    torch.save(model.token_embedder.state_dict(), folder / "token_embedder.pkl")
    torch.save(model.encoder.state_dict(), folder / "encoder.pkl")
    _check_agreement(options_file, weight_file, folder)


def manylangs_config(options: dict) -> dict:
    """ELMoForManyLangs' model config of a published ``options.json`` (characters only)."""
    cnn, lstm = options["char_cnn"], options["lstm"]
    if not lstm.get("use_skip_connections", False) or lstm.get("n_layers", 1) < 1:
        raise SystemExit("ELMoForManyLangs' ELMo has residual connections: use_skip_connections")
    return {
        "encoder": {"name": "elmo", "projection_dim": lstm["projection_dim"], "dim": lstm["dim"],
                    "cell_clip": lstm["cell_clip"], "proj_clip": lstm["proj_clip"],
                    "n_layers": lstm["n_layers"]},
        "token_embedder": {"name": "cnn", "activation": cnn["activation"],
                           "filters": cnn["filters"], "n_highway": cnn["n_highway"],
                           "word_dim": 0, "char_dim": cnn["embedding"]["dim"],
                           "max_characters_per_token": MAX_CHARACTERS},
        "classifier": {"name": "sampled_softmax", "n_samples": 8192},
        "dropout": 0.1,  # training only (the embedder runs in eval mode)
    }  # fmt: skip


def manylangs_characters() -> dict[str, int]:
    """``char.dic``: each character the id AllenNLP gives its byte (byte + 1), for bytes whose
    character survives ``char.dic``'s parsing (printable, not whitespace); placeholders elsewhere,
    so that ids 0..261 all exist, as the 262 rows of the published character embedding."""
    characters = {"<oov>": 0}  # AllenNLP's id 0: the zero row (padding)
    for byte in range(256):
        character = chr(byte)
        usable = character.isprintable() and not character.isspace()
        characters[character if usable else f"<byte{byte}>"] = byte + 1
    # ELMoForManyLangs takes the begin-of-word id from "<eow>" and the end-of-word id from "<bow>"
    characters.update({"<bos>": 257, "<eos>": 258, "<eow>": 259, "<bow>": 260, "<pad>": 261})
    return characters


def _check_agreement(options_file: Path, weight_file: Path, folder: Path) -> None:
    """One batch of ASCII sentences (longest first, fresh state) through the three: print the
    largest difference of each peer's layers from ours."""
    import torch
    from allennlp.data.token_indexers.elmo_indexer import ELMoCharacterMapper
    from allennlp.modules.elmo import _ElmoBiLm
    from elmoformanylangs import Embedder

    from elmo.embedder import ElmoEmbedder

    sentences = [s.split() for s in ("The river bank was flooded after the storm .",
                                     "I deposited money at the bank .", "A bank .")]  # fmt: skip
    ours = ElmoEmbedder.from_published(options_file, weight_file).embed_sentences(sentences)
    allennlp = allennlp_embed(_ElmoBiLm(str(options_file), str(weight_file), requires_grad=False),
                              ELMoCharacterMapper(), sentences, batch_size=len(sentences))  # fmt: skip
    manylangs = Embedder(str(folder), batch_size=len(sentences)).sents2elmo(sentences, output_layer=-2)
    for name, theirs in (("allennlp", allennlp), ("manylangs", manylangs)):
        gap = max(float((torch.as_tensor(t) - o).abs().max()) for t, o in zip(theirs, ours))
        print(f"{folder.parent.name}: {name} vs elmo, largest difference {gap:.2e}", file=sys.stderr)
        if gap > 1e-3:
            raise SystemExit(f"{name} does not compute what elmo does on {folder.parent}: {gap}")


def allennlp_embed(bilm, mapper, sentences: list[list[str]], batch_size: int) -> list:
    """AllenNLP's ``ElmoEmbedder.embed_sentences`` (allennlp 0.9, ``commands/elmo.py``; gone from
    2.x): batches in input order through the stateful ``_ElmoBiLm``, all layers per sentence as
    numpy (L, n, 2D). ``batch_to_ids`` as ``ELMoTokenCharactersIndexer`` pads: zero ids for
    padding tokens."""
    import torch
    from allennlp.nn.util import remove_sentence_boundaries

    vectors = []
    for start in range(0, len(sentences), batch_size):
        batch = sentences[start : start + batch_size]
        ids = torch.zeros(len(batch), max(map(len, batch)), MAX_CHARACTERS, dtype=torch.long)
        for row, sentence in enumerate(batch):
            for column, token in enumerate(sentence):
                ids[row, column] = torch.tensor(mapper.convert_word_to_char_ids(token))
        output = bilm(ids)
        layers = [remove_sentence_boundaries(layer, output["mask"]) for layer in output["activations"]]
        stacked = torch.cat([layer.unsqueeze(1) for layer, _ in layers], dim=1)  # (B, L, T, 2D)
        mask = layers[0][1]
        for row in range(len(batch)):
            length = int(mask[row].sum())
            vectors.append(stacked[row, :, :length].detach().cpu().numpy())
    return vectors


def manylangs_train_steps(config_file: Path, text: Path, batch_size: int, warmup: int,
                          steps: int) -> list[tuple[int, float]]:  # fmt: skip
    """Time ELMoForManyLangs' training step (``biLM.train_model``'s loop body) at a model config.

    Set up as its ``biLM.train`` does: ``read_corpus`` (pieces of at most 20 tokens with
    ``<bos>``/``<eos>``), every word of the text in the vocabulary (``min_count`` 1: WikiText-2
    already maps rare words to ``<unk>``), the characters of the text, ``create_batches`` (sorted
    by length, no shuffling) over the first ``batch_size * (warmup + steps)`` pieces, and Adam
    (lr 0.001). A step is ``zero_grad``, the forward of both directions through its sampled
    softmax, the mean loss's backward, ``clip_grad_norm_`` (5) and the optimizer's step.

    Returns:
        (LM predictions, seconds) of each timed step: predictions of both directions (every
        token of a piece but the first, forward, and the last, backward).
    """
    import random
    import time

    import torch
    from elmoformanylangs.biLM import Model, create_batches, get_truncated_vocab, read_corpus
    from elmoformanylangs.modules.embedding_layer import EmbeddingLayer

    torch.manual_seed(0)
    random.seed(0)
    config = json.loads(config_file.read_text(encoding="utf-8"))
    data = read_corpus(str(text), config["token_embedder"]["max_characters_per_token"], 20)
    words = {}
    for special in ["<oov>", "<bos>", "<eos>", "<pad>"]:
        words[special] = len(words)
    for word, _ in get_truncated_vocab(data, 1):
        words.setdefault(word, len(words))
    characters = {}
    for piece in data:
        for word in piece:
            for character in word:
                characters.setdefault(character, len(characters))
    for special in ["<bos>", "<eos>", "<oov>", "<pad>", "<bow>", "<eow>"]:
        characters.setdefault(special, len(characters))
    char_layer = EmbeddingLayer(config["token_embedder"]["char_dim"], characters, fix_emb=False)
    model = Model(config, None, char_layer, len(words)).train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.001)
    needed = data[: batch_size * (warmup + steps)]
    batches = create_batches(needed, batch_size, words, characters, config, shuffle=False)
    timed = []
    for index, (w, c, _, masks) in enumerate(zip(*batches)):
        started = time.perf_counter()
        model.zero_grad()
        loss_forward, loss_backward = model.forward(w, c, masks)
        ((loss_forward + loss_backward) / 2.0).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if index >= warmup:
            timed.append((len(masks[1]) + len(masks[2]), time.perf_counter() - started))
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    parser.add_argument("--scratch", type=Path, default=SCRATCH)
    parser.add_argument("--allennlp-git", type=Path, help="a git copy of allenai/allennlp")
    parser.add_argument("--shapes", default="small,original")
    converting = sub.add_parser("convert", help=argparse.SUPPRESS)
    for name in ("options_file", "weight_file", "folder"):
        converting.add_argument(name, type=Path)
    args = parser.parse_args()
    if args.command == "convert":
        convert(args.options_file, args.weight_file, args.folder)
    else:
        print(json.dumps({k: str(v) for k, v in setup(args.scratch, args.allennlp_git,
                                                        args.shapes.split(",")).items()}))  # fmt: skip


if __name__ == "__main__":
    main()

"""ELMo (Peters et al., 2018) in PyTorch: exact to the published weights, fast, easy to train."""

from elmo.hugepages import use_huge_pages
from elmo.openmp import share_cores_when_busy

share_cores_when_busy()  # before torch is imported: libgomp reads it once (elmo/openmp.py)
use_huge_pages()  # before torch is imported: torch reads it once (elmo/hugepages.py)


from elmo.config import BiLMConfig, CharCNNConfig, LSTMConfig
from elmo.data.characters import batch_to_ids
from elmo.embedder import Elmo, ElmoEmbedder
from elmo.model import BiLM
from elmo.pretrained import from_pretrained, load_bilm, load_tokenizer, save_pretrained
from elmo.published import export_published, load_published

__all__ = [
    "BiLM",
    "BiLMConfig",
    "CharCNNConfig",
    "Elmo",
    "ElmoEmbedder",
    "LSTMConfig",
    "batch_to_ids",
    "export_published",
    "from_pretrained",
    "load_bilm",
    "load_published",
    "load_tokenizer",
    "save_pretrained",
]
__version__ = "0.1.0"

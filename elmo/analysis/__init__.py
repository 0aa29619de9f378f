"""Seeing context at work: lexical substitutes, contextual neighbours and sense-cluster plots.

from elmo.analysis import find_substitutes, build_index, find_neighbours, find_senses
"""

from elmo.analysis.corpus import Corpus, read_corpus
from elmo.analysis.index import ContextIndex, build_index
from elmo.analysis.kmeans import choose_k, kmeans, silhouette_score
from elmo.analysis.neighbours import Neighbour, find_neighbours
from elmo.analysis.pca import pca
from elmo.analysis.query import MarkedQuery, parse_marked_query
from elmo.analysis.senses import Senses, find_senses, plot_senses, write_senses_csv
from elmo.analysis.substitutes import Substitute, Substitutes, find_substitutes
from elmo.layer_choice import parse_choice

__all__ = [
    "ContextIndex",
    "Corpus",
    "MarkedQuery",
    "Neighbour",
    "Senses",
    "Substitute",
    "Substitutes",
    "build_index",
    "choose_k",
    "find_neighbours",
    "find_senses",
    "find_substitutes",
    "kmeans",
    "parse_choice",
    "parse_marked_query",
    "pca",
    "plot_senses",
    "read_corpus",
    "silhouette_score",
    "write_senses_csv",
]

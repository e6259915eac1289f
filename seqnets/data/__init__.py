"""Datasets and batching for seqnets.

`formal_languages` holds the counter languages (aⁿbⁿ, aⁿbⁿcⁿ, …) of Gers &
Schmidhuber (2001) as next-symbol prediction tasks. Their TFDS builder lives
in `seqnets.data.formal_languages_tfds`; it is not imported here, so that
importing `seqnets.data` does not import TensorFlow Datasets.
"""

from seqnets.data.formal_languages import LANGUAGES
from seqnets.data.formal_languages import Language
from seqnets.data.formal_languages import PAD_ID
from seqnets.data.formal_languages import counter_language
from seqnets.data.formal_languages import get_language
from seqnets.data.formal_languages import make_batch
from seqnets.data.formal_languages import max_correct_n
from seqnets.data.formal_languages import sample_ns
from seqnets.data.formal_languages import sequence_correct
from seqnets.data.formal_languages import train_batches

__all__ = [
    'LANGUAGES',
    'Language',
    'PAD_ID',
    'counter_language',
    'get_language',
    'make_batch',
    'max_correct_n',
    'sample_ns',
    'sequence_correct',
    'train_batches',
]

"""Datasets and batching for seqnets: every source of examples lives here.

The line between `seqnets.data` and `seqnets.tasks`: this package makes and reads examples
(generators of synthetic data such as the formal languages, copy memory, the adding
problem and Mackey-Glass; readers of files and TFDS; vocabularies, padding, bucketing),
as NumPy arrays, knowing nothing of models, losses or configs. A task
(`seqnets.tasks.<name>`) turns `config.data` into calls of these, and owns the objective,
the metrics, its evaluation files' format and what the model receives.

`formal_languages` holds the counter languages (aⁿbⁿ, aⁿbⁿcⁿ, …) of Gers &
Schmidhuber (2001) as next-symbol prediction tasks, generated exactly from n (no
stored copy is needed).
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

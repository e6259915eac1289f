"""Task models assembled from `seqnets.layers`."""

from seqnets.models.tagger import RecurrentTagger

"""Task models assembled from `seqnets.layers`."""

from seqnets.models.alexnet import AlexNet
from seqnets.models.cnn import ImageCNN
from seqnets.models.text_cnn import TextCNN
from seqnets.models.language_model import RecurrentLM
from seqnets.models.transformer import TransformerSeq2Seq
from seqnets.models.sequence_tagger import SequenceTagger
from seqnets.models.recurrent_classifier import RecurrentClassifier
from seqnets.models.sequence_readout import SequenceReadout

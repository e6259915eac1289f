"""Examples of sequence-to-sequence problems: `synthetic` generates them (reverse, copy,
sort, addition), `batches` pads (source, target) pairs into teacher-forced batches. The
task that trains on them is `seqnets.tasks.seq2seq`."""

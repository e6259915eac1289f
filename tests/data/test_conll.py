import collections
import gzip
import pathlib

import pytest

from seqnets.data import conll
from seqnets.data import paths
from seqnets.data.conll import TaggedSentence

CONLLU = '\n'.join([
    '# sent_id = 1',                                                         # line 1
    '# text = Don\'t go.',                                                   # 2
    '1-2\tDon\'t\t_\t_\t_\t_\t_\t_\t_\t_',                                   # 3
    '1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_',                                  # 4
    '2\tn\'t\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_',                            # 5
    '3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No',                     # 6
    '3.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t0:root\t_',                             # 7
    '4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_',                                  # 8
    '',                                                                      # 9
    '# sent_id = 2',                                                         # 10
    '1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_',                                 # 11
    '2\t!\t!\tPUNCT\t.\t_\t1\tpunct\t_\t_',                                  # 12
])  # no trailing blank line, no final newline

CONLL_TABS = 'EU\tB-ORG\nrejects\tO\n\t\nGerman\tB-MISC\ncall\tO\n'


def write(path: pathlib.Path, text: str, gz: bool = False, bom: bool = False,
          crlf: bool = False) -> pathlib.Path:
  if crlf:
    text = text.replace('\n', '\r\n')
  data = (b'\xef\xbb\xbf' if bom else b'') + text.encode('utf-8')
  path.write_bytes(gzip.compress(data) if gz else data)
  return path


def test_conllu_worked_example(tmp_path):
  path = write(tmp_path / 'x.conllu', CONLLU)
  assert conll.read_conllu(path) == [
      TaggedSentence(('Do', "n't", 'go', '.'), ('AUX', 'PART', 'VERB', 'PUNCT'), 4, (4, 5, 6, 8)),
      TaggedSentence(('Hi', '!'), ('INTJ', 'PUNCT'), 11, (11, 12)),
  ]


@pytest.mark.parametrize('column,labels', [
    ('xpos', [('VBP', 'RB', 'VB', '.'), ('UH', '.')]),
    ('XPOS', [('VBP', 'RB', 'VB', '.'), ('UH', '.')]),
    (4, [('VBP', 'RB', 'VB', '.'), ('UH', '.')]),
    ('deprel', [('aux', 'advmod', 'root', 'punct'), ('root', 'punct')]),
    (7, [('aux', 'advmod', 'root', 'punct'), ('root', 'punct')]),
    ('lemma', [('do', 'not', 'go', '.'), ('hi', '!')]),
    (-1, [('_', '_', 'SpaceAfter=No', '_'), ('_', '_')]),
])
def test_conllu_column_by_name_and_index(tmp_path, column, labels):
  path = write(tmp_path / 'x.conllu', CONLLU)
  assert [s.labels for s in conll.read_conllu(path, column=column)] == labels


@pytest.mark.parametrize('reader,text', [
    (conll.read_conllu, CONLLU + '\n\n'),
    (conll.read_conll, '-DOCSTART- -X- -X- O\n\n' + CONLL_TABS),
])
def test_gzip_bom_and_crlf_read_the_same(tmp_path, reader, text):
  expected = reader(write(tmp_path / 'plain.txt', text))
  assert reader(write(tmp_path / 'a.gz', text, gz=True)) == expected
  assert reader(write(tmp_path / 'no_suffix', text, gz=True)) == expected     # magic bytes
  assert reader(write(tmp_path / 'bom.txt', text, bom=True)) == expected
  assert reader(write(tmp_path / 'crlf.txt', text, crlf=True)) == expected
  assert reader(str(write(tmp_path / 'all.gz', text, gz=True, bom=True, crlf=True))) == expected


def test_conll_tabs_and_tab_only_separator(tmp_path):
  path = write(tmp_path / 'x.conll', CONLL_TABS)
  assert conll.read_conll(path) == [
      TaggedSentence(('EU', 'rejects'), ('B-ORG', 'O'), 1, (1, 2)),
      TaggedSentence(('German', 'call'), ('B-MISC', 'O'), 4, (4, 5)),
  ]


def test_conll_2003_spaces_docstart_and_repeated_blank_lines(tmp_path):
  text = ('-DOCSTART- -X- -X- O\n\n'                    # lines 1-2
          'EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n'      # 3-4
          '\n  \n\t\n\n'                                 # 5-8
          '-DOCSTART- -X- -X- O\n\n'                     # 9-10
          'Peter NNP B-NP B-PER\n'                       # 11
          'Blackburn  NNP   B-NP   I-PER  \n\n\n')       # 12: runs of spaces, trailing spaces
  path = write(tmp_path / 'eng.testa', text)
  sentences = conll.read_conll(path)
  assert sentences == [
      TaggedSentence(('EU', 'rejects'), ('B-ORG', 'O'), 3, (3, 4)),
      TaggedSentence(('Peter', 'Blackburn'), ('B-PER', 'I-PER'), 11, (11, 12)),
  ]
  assert [s.labels for s in conll.read_conll(path, label_column=1)][0] == ('NNP', 'VBZ')
  assert [s.tokens for s in conll.read_conll(path, token_column=2)][1] == ('B-NP', 'B-NP')


def test_conll_keeps_unusual_characters_in_tokens(tmp_path):
  path = write(tmp_path / 'x.conll', 'Dubbz\ufeff\tB-person\n\u00a0\tO\n')
  assert conll.read_conll(path)[0].tokens == ('Dubbz\ufeff', '\u00a0')


@pytest.mark.parametrize('text,message', [
    ('1\tDo\tdo\tAUX\n', r'x\.conllu:1: 4 tab-separated columns, expected 10'),
    ('# c\n1\tDo do AUX VBP _ 3 aux _ _\n', r'x\.conllu:2: 2 tab-separated columns'),
    ('1\ta\t_\tX\t_\t_\t0\troot\t_\t_\nx\tb\t_\tX\t_\t_\t1\tdep\t_\t_\n',
     r"x\.conllu:2: bad ID 'x'"),
    ('1\ta\t_\tX\t_\t_\t0\troot\t_\t_\n1.\tb\t_\tX\t_\t_\t1\tdep\t_\t_\n',
     r"x\.conllu:2: bad ID '1\.'"),
    ('1\ta\t_\tX\t_\t_\t0\troot\t_\t_\n1\tb\t_\tX\t_\t_\t0\troot\t_\t_\n',
     r'x\.conllu:2: ID 1 where 2 was expected'),
    ('1\t\t_\tX\t_\t_\t0\troot\t_\t_\n', r'x\.conllu:1: empty FORM'),
    ('1\ta\t_\t\t_\t_\t0\troot\t_\t_\n', r'x\.conllu:1: empty UPOS'),
    ('# only a comment\n\n', r'x\.conllu: no sentences'),
    ('', r'x\.conllu: no sentences'),
])
def test_conllu_errors_name_file_and_line(tmp_path, text, message):
  path = write(tmp_path / 'x.conllu', text)
  with pytest.raises(ValueError, match=message):
    conll.read_conllu(path)


def test_conllu_unknown_column_lists_valid_ones(tmp_path):
  path = write(tmp_path / 'x.conllu', CONLLU)
  with pytest.raises(ValueError, match=r"x\.conllu: unknown CoNLL-U column 'pos'; valid: .*'upos'"):
    conll.read_conllu(path, column='pos')
  with pytest.raises(ValueError, match=r'x\.conllu: column=10 is out of range'):
    conll.read_conllu(path, column=10)


@pytest.mark.parametrize('reader', [conll.read_conllu, conll.read_conll])
def test_invalid_utf8_names_line_and_byte(tmp_path, reader):
  path = tmp_path / 'bad.txt'
  path.write_bytes(CONLLU.encode()[:200] + b'\n\xff\n')
  line = CONLLU.encode()[:200].count(b'\n') + 2
  with pytest.raises(ValueError, match=rf'bad\.txt:{line}: invalid UTF-8 at byte 201'):
    reader(path)


@pytest.mark.parametrize('reader', [conll.read_conllu, conll.read_conll])
def test_missing_file_names_path(tmp_path, reader):
  with pytest.raises(FileNotFoundError, match=r'nothere\.txt'):
    reader(tmp_path / 'nothere.txt')


@pytest.mark.parametrize('text,kwargs,message', [
    ('EU\tB-ORG\nrejects\n', {}, r'x\.conll:2: 1 column\(s\), need at least 2'),
    ('EU NNP B-ORG\nrejects O\n', {'token_column': 0, 'label_column': 2},
     r'x\.conll:2: 2 column\(s\), need at least 3'),
    ('EU\tB-ORG\n\tO\n', {}, r'x\.conll:2: empty token'),
    ('EU\tB-ORG\nrejects\t\tO\n', {'label_column': 1}, r'x\.conll:2: empty label'),
    ('-DOCSTART-\tO\n\n \n', {}, r'x\.conll: no sentences'),
])
def test_conll_errors_name_file_and_line(tmp_path, text, kwargs, message):
  path = write(tmp_path / 'x.conll', text)
  with pytest.raises(ValueError, match=message):
    conll.read_conll(path, **kwargs)


def test_label_counts_and_check_bio(tmp_path):
  path = write(tmp_path / 'x.conll', 'a\tO\nb\tI-LOC\nc\tI-LOC\n\nd\tB-PER\ne\tE-PER\n')
  sentences = conll.read_conll(path)
  assert conll.label_counts(sentences) == collections.Counter(
      {'O': 1, 'I-LOC': 2, 'B-PER': 1, 'E-PER': 1})
  conll.check_bio(sentences[:1], path)                  # IOB1-style I- without a B- is fine
  with pytest.raises(ValueError, match=r"x\.conll:6: label 'E-PER' is not O, B-<type> or I-<type>"):
    conll.check_bio(sentences, path)


@pytest.mark.parametrize('label', ['B-', 'I-', 'o', 'B_PER', 'BPER', 'X'])
def test_check_bio_rejects_malformed_names(label):
  with pytest.raises(ValueError, match=r'f\.conll:11: label'):
    conll.check_bio([TaggedSentence(('a', 'b'), ('O', label), 10)], 'f.conll')


def test_conllu_line_numbers_point_at_tokens_past_comments(tmp_path):
  sentences = conll.read_conllu(write(tmp_path / 'x.conllu', CONLLU), column='upos')
  bad = TaggedSentence(sentences[0].tokens, ('O', 'O', 'O', 'PUNCT'), 4, sentences[0].token_lines)
  with pytest.raises(ValueError, match=r'x\.conllu:8: label'):
    conll.check_bio([bad], tmp_path / 'x.conllu')


def test_tagged_sentence_checks_lengths():
  with pytest.raises(ValueError, match='2 tokens but 1 labels'):
    TaggedSentence(('a', 'b'), ('O',), 1)


# The real dev files, under the data root ($SEQNETS_DATA_DIR; docs/data.md), when it has them.
UD_DEV = 'ud_english_ewt/en_ewt-ud-dev.conllu'
WNUT_DEV = 'wnut17/emerging.dev.conll'


def under_data_root(name):
  """Skips the test unless the data root holds `name`."""
  if not paths.data_path(name).is_file():
    pytest.skip(f'{name} is not under the data root {paths.data_root()} ($SEQNETS_DATA_DIR)')
  return name


def test_reads_ud_english_ewt_dev():
  sentences = conll.read_conllu(under_data_root(UD_DEV))
  assert len(sentences) == 2001
  assert sum(len(s.tokens) for s in sentences) == 25147
  assert sentences[0].tokens[:3] == ('From', 'the', 'AP') and sentences[0].line == 5


def test_reads_wnut17_dev():
  sentences = conll.read_conll(under_data_root(WNUT_DEV))
  assert len(sentences) == 1009
  assert sum(len(s.tokens) for s in sentences) == 15733
  conll.check_bio(sentences, WNUT_DEV)
  assert conll.label_counts(sentences)['O'] > 0

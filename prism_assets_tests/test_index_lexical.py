"""The search's CPU savings keep its answers: the lexical scorer (prism_assets/index/lexical.py) against its plain
definition, the fuzzy (typo) full-text pass only where the exact words found nothing close, and the index revision
cached per read-consistency interval but fresh after a write."""

from __future__ import annotations

import random

import pytest

from prism_assets.index import lexical
from prism_assets.index.backend import LanceBackend
from prism_assets.index.lexical import LexicalQuery, fold, lexical_score, near_word
from prism_assets.index.search import Query, Searcher
from prism_assets_tests.test_index import T1, FakeEmbedder, build_title, write_corpus


def one_edit(a: str, b: str) -> bool:
    """Exactly one substitution, insertion or deletion apart (the definition, letter by letter)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b)) == 1
    long, short = (a, b) if len(a) > len(b) else (b, a)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def test_near_is_one_edit_for_random_words_of_any_script():
    rng = random.Random(7)
    alphabet = "aabeé서울東xß"

    def mutate(w: str) -> str:
        w, i = list(w), rng.randrange(len(w) + 1)
        kind = rng.randrange(3)
        if kind == 0 and i < len(w):
            w[i] = rng.choice(alphabet)
        elif kind == 1:
            w.insert(i, rng.choice(alphabet))
        elif i < len(w):
            del w[i]
        return "".join(w)

    checked = near = 0
    for _ in range(20_000):
        w = "".join(rng.choice(alphabet) for _ in range(rng.randrange(2, 8)))
        words = {mutate(mutate(w)) if rng.random() < 0.3 else mutate(w) for _ in range(rng.randrange(1, 4))} - {w}
        want = len(w) >= 4 and any(len(d) >= 4 and one_edit(w, d) for d in words)
        assert near_word(w, words) == want and near_word(w, words, {}) == want, (w, words)
        checked, near = checked + 1, near + want
    assert near > 2000 and checked - near > 2000  # both answers were exercised


@pytest.mark.parametrize("text", ["Meet me at the OLD lighthouse, tonight!", "  tabs\tand\nnew-lines__ok 42 ", "Straße Crème", "여러분 東京 a-b"])
def test_fold_ascii_short_path_is_the_full_fold(text):
    import re
    import unicodedata

    full = unicodedata.normalize("NFKD", text.casefold())
    full = " ".join(re.sub(r"[^\w]+", " ", "".join(c for c in full if not unicodedata.combining(c))).split())
    assert fold(text) == full


def test_lexical_query_scores_as_lexical_score_and_once_per_text(monkeypatch):
    texts = ["meet me at the old lighthouse tonight", "안녕하세요 여러분", "nothing here", "", None, "the OLD lighthoise 여러!"]
    want = [lexical_score("the old lighthoise 여러", t or "") for t in texts]
    folded = []
    monkeypatch.setattr(lexical, "fold", lambda text, fold=lexical.fold: folded.append(text) or fold(text))
    q = LexicalQuery("the old lighthoise 여러")
    assert [q.score(t) for t in texts] == want
    first = len(folded)
    assert first > len(texts) - 1  # the texts were folded (the query too)
    assert [q.score(t) for t in texts] == want and len(folded) == first  # the second pass is remembered: nothing folded again
    assert want[-1] == 1.0 and 0 < want[0] < 1


class CountingBackend:
    """The backend, counting its full-text calls by fuzziness."""

    def __init__(self, inner):
        self.inner, self.fuzzy, self.exact = inner, 0, 0

    def fts(self, *a, fuzziness: int = 0, **kw):
        if fuzziness:
            self.fuzzy += 1
        else:
            self.exact += 1
        return self.inner.fts(*a, fuzziness=fuzziness, **kw)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    backend, _ = write_corpus(str(tmp_path_factory.mktemp("lexical") / "index"), FakeEmbedder())
    return backend


def test_typo_pass_only_where_the_exact_words_found_nothing_close(corpus):
    counting = CountingBackend(corpus)
    s = Searcher(counting, FakeEmbedder())
    hits, _ = s.search(Query(text="meet me at the old lighthouse tonight", channels=("speech",)))
    assert hits and hits[0].score > 0.99 and (counting.exact, counting.fuzzy) == (1, 0)  # found exactly: no typo pass
    hits, _ = s.search(Query(text="lighthoise", mode="lexical", channels=("speech",)))
    assert counting.fuzzy == 1 and hits and all("lighthouse" in h.text for h in hits)  # the misspelt word still found
    hits, _ = s.search(Query(text="old", mode="lexical", channels=("speech",)))
    assert counting.fuzzy == 1  # no word of 5+ letters: one edit would match too much, no typo pass


def test_revision_cached_per_interval_and_fresh_after_a_write(tmp_path):
    write_corpus(str(tmp_path / "index"), FakeEmbedder())
    backend = LanceBackend(str(tmp_path / "index"), read_consistency_s=3600)  # only a write through it moves its revision
    before = backend.revision()
    other = LanceBackend(backend.uri, read_consistency_s=0)
    rows, trow, _ = build_title(T1, FakeEmbedder(), index_version="run2")
    other.replace_title(T1, rows, trow)
    assert other.revision() > before  # read at once where the interval is 0
    assert backend.revision() == before  # another process's write: seen after the interval, like the reads
    backend.replace_title(T1, rows, trow)
    assert backend.revision() == other.revision() > before

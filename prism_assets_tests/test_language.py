"""One module for language tags (core/language.py): the picture, sound and subtitle readers agree on what
names no language, and the helpers that compare tags are the same everywhere."""

from types import SimpleNamespace

import pytest

from prism_assets.core import language as L

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("tag", [None, "", "und", "UND", "unk", "zxx", "mis", "mul", " und "])
def test_every_reader_says_no_language_for_the_same_tags(tag):
    stream = SimpleNamespace(metadata={"language": tag} if tag is not None else {})
    assert L.stream_language(stream) is None and L.valid_language(tag) is None and L.normal_language(tag) is None
    assert L.base_language(tag) is None and L.language_problem(tag) is None  # no language is not a bad tag


def test_the_stream_readers_use_it():
    """audio/decode.py, ingest/probe.py and localization/streams.py read tags through core.language, not copies."""
    import inspect

    from prism_assets.audio import decode
    from prism_assets.ingest import probe
    from prism_assets.localization import collect, streams

    for mod in (decode, probe):
        assert "stream_language(" in inspect.getsource(mod) and "def _lang(" not in inspect.getsource(mod), mod.__name__
    assert streams.valid_language is L.valid_language and streams.language_problem is L.language_problem
    assert collect.normal_language is L.normal_language


def test_tags():
    assert L.stream_language(SimpleNamespace(metadata={"language": "ger"})) == "ger"
    assert L.valid_language("pt-BR") == "pt-BR" and L.normal_language("pt_BR") == "pt-br" and L.normal_language("ger") == "de"
    assert L.language_problem("xx-INVALID") and L.valid_language("xx-INVALID") is None
    assert L.base_language("eng") == L.base_language("en-GB") == "en" and L.iso639_1("deu") == "de"


def test_decided_language_rule():
    assert L.decide_on_speech(3.0, "en", 0.99)[0] is None
    assert L.decide_on_speech(60.0, "ko", 0.3)[0] is None
    lang, why = L.decide_on_speech(60.0, "ko", 0.9)
    assert lang == "ko" and "60 s" in why

"""RAG: chunkers, corpus reading, faiss indexes, the plan's sweep, and one tiny end-to-end run."""

from __future__ import annotations

import json
import re

import pytest

from advisor.yaml_errors import SpecError
from baselines.embedding import Embedder
from baselines.rag.chunking import ChunkParams, Tools, chunkers, sentence_spans, whitespace_tokens
from baselines.rag.corpus import Document, load_corpus
from baselines.rag.index import IndexParams, build, index_bytes, indexes, recall_against, round_trip, search
from conftest import HANDBOOK, fake_embed, qa_task, write_jsonl

TOOLS = Tools(whitespace_tokens, fake_embed)
LONG = Document("long", "\n\n".join(
    f"Paragraph {p} starts here. " + " ".join(f"Sentence {p}.{s} has a few words in it." for s in range(6))
    for p in range(5)))


@pytest.mark.parametrize("name", ["fixed", "sentence", "recursive", "semantic"])
def test_chunks_are_slices_of_their_document(name):
    chunks = chunkers.get(name)(ChunkParams(size=20, overlap=5, sentences=2), TOOLS).split(LONG)
    assert chunks
    for chunk in chunks:
        assert chunk.doc_id == "long"
        assert LONG.text[chunk.start : chunk.end] == chunk.text and chunk.text.strip()
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def test_fixed_windows_respect_size_and_overlap():
    tokens = whitespace_tokens(LONG.text)
    chunks = chunkers.get("fixed")(ChunkParams(size=20, overlap=5), TOOLS).split(LONG)
    starts = [tokens.index(next(t for t in tokens if t[0] == c.start)) for c in chunks]
    assert all(b - a == 15 for a, b in zip(starts, starts[1:]))  # each window starts size - overlap tokens later
    assert all(len(whitespace_tokens(c.text)) == 20 for c in chunks[:-1])
    assert chunks[-1].end == tokens[-1][1]  # nothing lost at the end


def test_recursive_keeps_sentences_whole_when_they_fit():
    chunks = chunkers.get("recursive")(ChunkParams(size=25), TOOLS).split(LONG)
    ends = {e for _, e in sentence_spans(LONG.text)}
    assert all(len(whitespace_tokens(c.text)) <= 25 for c in chunks)
    assert all(c.end in ends for c in chunks)


def test_semantic_splits_where_the_topic_changes():
    doc = Document("d", "Train tickets and train fares. Train fares for a train ticket. Buy train tickets here. "
                        "Cats and dogs are pets. Pets like cats and dogs. Dogs and cats play.")
    chunks = chunkers.get("semantic")(ChunkParams(percentile=80), TOOLS).split(doc)
    assert [c.text.split()[0] for c in chunks] == ["Train", "Cats"]


def test_different_settings_give_different_chunkings_and_indexes():
    import faiss

    docs = [LONG, *(Document(k, v) for k, v in HANDBOOK.items())]
    settings = [("fixed", ChunkParams(size=16, overlap=4)), ("fixed", ChunkParams(size=32, overlap=4)),
                ("fixed", ChunkParams(size=32, overlap=8)), ("sentence", ChunkParams(sentences=1)),
                ("sentence", ChunkParams(sentences=3)), ("recursive", ChunkParams(size=16)),
                ("recursive", ChunkParams(size=48)), ("semantic", ChunkParams(percentile=50)),
                ("semantic", ChunkParams(percentile=90))]
    boundaries = [tuple((c.doc_id, c.start, c.end) for c in chunkers.get(n)(p, TOOLS).split_all(docs)) for n, p in settings]
    assert len(set(boundaries)) == len(settings)
    vectors = fake_embed([f"text number {i} about topic {i % 7}" for i in range(300)])
    variants = [(name, IndexParams()) for name in indexes.names()] + [
        ("hnsw", IndexParams(hnsw_m=8)), ("ivf-flat", IndexParams(nlist=4)), ("lsh", IndexParams(lsh_bits=64))]
    blobs = [faiss.serialize_index(build(n, vectors, p).index).tobytes() for n, p in variants]
    assert len(set(blobs)) == len(variants)


@pytest.mark.parametrize("name", ["flat", "hnsw", "ivf-flat", "ivf-pq", "lsh"])
def test_index_round_trip_and_recall_against_flat(name):
    vectors = fake_embed([f"document {i} mentions word{i % 13} and word{i % 5}" for i in range(400)])
    queries = vectors[:20]
    built = build(name, vectors, IndexParams())
    found = search(built.index, queries, 5)
    assert (search(round_trip(built.index), queries, 5) == found).all()
    assert index_bytes(built.index) > 0 and built.build_s >= 0
    recall = recall_against(found, search(build("flat", vectors, IndexParams()).index, queries, 5))
    assert recall == 1.0 if name == "flat" else 0 < recall <= 1.0


def test_ivf_lists_follow_corpus_size():
    vectors = fake_embed([f"item {i} w{i % 17}" for i in range(400)])
    assert build("ivf-flat", vectors, IndexParams()).params["nlist"] == 400 // 39  # sqrt(400)=20 clamped to n/39
    chosen = build("ivf-flat", vectors, IndexParams(nlist=3, nprobe=2)).params
    assert (chosen["nlist"], chosen["nprobe"], chosen["nlist_rule"]) == (3, 2, "given")


def test_corpus_warns_per_bad_file_and_goes_on(tmp_path):
    (tmp_path / "good.md").write_text("The Day Rover costs 11.50 euros.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "binary.md").write_bytes(b"\x89PNG\x00\x01\x02")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    corpus = load_corpus(tmp_path)
    assert [d.id for d in corpus.documents] == ["good"]
    warnings = "\n".join(corpus.warnings)
    assert len(corpus.warnings) == 3
    assert "empty.txt: empty file" in warnings and "binary.md: binary file" in warnings and "latin1.txt: not UTF-8" in warnings


def test_jsonl_corpus_and_fingerprint_changes_with_content(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"id": 1, "text": "one"}, {"id": 2, "text": ""}, {"text": "no id"}])
    corpus = load_corpus(path)
    assert [d.id for d in corpus.documents] == ["1"] and len(corpus.warnings) == 2
    write_jsonl(path, [{"id": 1, "text": "one!"}])
    assert load_corpus(path).fingerprint != corpus.fingerprint


def test_empty_corpus_is_an_error(tmp_path):
    (tmp_path / "empty.md").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=f"knowledge corpus {re.escape(str(tmp_path))} has no usable documents"):
        load_corpus(tmp_path)


def test_plan_sweeps_only_knobs_that_apply(tmp_path, fake_embedder):
    from advisor.plan import make_plan
    from advisor.task import check_task

    task = qa_task(tmp_path, "smollm2-135m-instruct",
                    "rag: {chunking: [fixed, sentence, recursive], chunk_size: [32, 64], chunk_overlap: 8, index: [flat, hnsw]}")
    spec, splits, _ = check_task(task)
    trials = make_plan(spec, splits)
    assert sorted(t.name for t in trials) == sorted(
        f"rag/{c}/{i}" for c in ("fixed-32", "fixed-64", "recursive-32", "recursive-64", "sentence") for i in ("flat", "hnsw"))
    flat, hnsw = (next(t for t in trials if t.name == f"rag/sentence/{i}") for i in ("flat", "hnsw"))
    assert flat.settings["index_params"] == {} and "hnsw_m" in hnsw.settings["index_params"]
    assert "size" not in flat.settings["chunk_params"]
    (tmp_path / "docs" / "fares.md").write_text("changed", encoding="utf-8")
    assert {t.hash for t in make_plan(*check_task(task)[:2])}.isdisjoint(t.hash for t in trials)


def test_empty_corpus_and_unknown_names_are_spec_errors(tmp_path):
    from advisor.plan import make_plan
    from advisor.task import check_task

    task = qa_task(tmp_path, "smollm2-135m-instruct", "rag: {index: [hnws]}")
    with pytest.raises(SpecError, match="Did you mean 'hnsw'"):
        check_task(task)
    task.write_text(task.read_text().replace("[hnws]", "[flat]"))
    for md in (tmp_path / "docs").glob("*.md"):
        md.unlink()
    spec, splits, _ = check_task(task)
    with pytest.raises(SpecError, match="no usable documents"):
        make_plan(spec, splits)


@pytest.mark.slow  # a compare with indexes and generation
def test_compare_runs_rag_end_to_end(tmp_path, tiny_model_dir, fake_embedder, monkeypatch):
    from advisor import compare

    monkeypatch.setattr(Embedder, "text_budget", 7)  # the fixed 8-token chunks overflow it, short sentence groups do not

    task = qa_task(tmp_path, tiny_model_dir,
                    "rag: {chunking: [sentence, fixed], chunk_size: [8], chunk_overlap: 2, index: [flat, hnsw], k: 2, "
                    "context_tokens: 40, max_new_tokens: 4}")
    out = compare(task, out=tmp_path / "run", isolate=False)
    results = json.loads((out / "results.json").read_text())
    trials = {t["name"]: t for t in results["trials"]}
    assert set(trials) == {"rag/sentence/flat", "rag/sentence/hnsw", "rag/fixed-8/flat", "rag/fixed-8/hnsw"}
    for trial in trials.values():
        assert trial["status"] == "ok", trial.get("error")
        assert 0 <= trial["metrics"]["recall_at_k"] <= 1 and 0 <= trial["metrics"]["mrr"] <= trial["metrics"]["recall_at_k"]
        assert "token_f1" in trial["metrics"] and trial["metrics"]["retrieval_n"] == 4
        assert trial["resources"]["index_bytes"] > 0 and trial["resources"]["query_ms_p95"] >= trial["resources"]["query_ms_p50"]
        assert trial["details"]["retrieval"]["mean_context_tokens"] <= 40
        assert any("blank.txt: empty file" in w for w in trial["details"]["corpus"]["warnings"])
        preds = [json.loads(line) for line in (out / "trials" / trial["id"] / "predictions.jsonl").read_text().splitlines()]
        assert len(preds) == 4 and all(p["sources"] for p in preds)
    assert trials["rag/sentence/flat"]["resources"]["index_recall_at_k"] == 1.0
    assert trials["rag/sentence/flat"]["metrics"]["recall_at_k"] == 1.0  # word overlap finds every gold document
    sentence, fixed = trials["rag/sentence/flat"]["details"]["chunking"], trials["rag/fixed-8/flat"]["details"]["chunking"]
    assert sentence["boundaries_sha"] != fixed["boundaries_sha"] and sentence["chunks"] != fixed["chunks"]
    assert "chunks of" in (out / "report.md").read_text()
    assert any("longer than the embedder reads (7 tokens)" in w for w in trials["rag/fixed-8/flat"]["details"]["warnings"])


def test_a_corpus_over_the_limit_is_sampled_with_a_warning(tmp_path):
    from baselines.rag.corpus import load_corpus

    (tmp_path / "docs").mkdir()
    for i in range(10):
        (tmp_path / "docs" / f"d{i}.md").write_text(f"document number {i}")
    corpus = load_corpus(tmp_path / "docs", max_documents=4, seed=0)
    assert len(corpus.documents) == 4
    assert any("10 documents is more than max_documents=4" in w for w in corpus.warnings)
    assert [d.id for d in load_corpus(tmp_path / "docs", max_documents=4, seed=0).documents] == [d.id for d in corpus.documents]


def test_model_fingerprint_sees_new_weights_of_the_same_size(tmp_path):
    from baselines.embedding import Embedder
    from baselines.models import fingerprint

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 3_000_000)
    before, cache = fingerprint(str(tmp_path)), Embedder(str(tmp_path))._dir
    weights.write_bytes(b"a" * 2_999_999 + b"b")  # retrained: same size, other bytes
    assert fingerprint(str(tmp_path)) != before
    assert Embedder(str(tmp_path))._dir != cache  # its embedding cache starts afresh


def test_validate_shows_skipped_corpus_files_and_strict_refuses_them(tmp_path, fake_embedder):
    from click.testing import CliRunner

    from advisor.cli import cli

    task = qa_task(tmp_path, "smollm2-135m-instruct", "rag: {index: [flat]}")
    ok = CliRunner().invoke(cli, ["validate", str(task)])
    assert ok.exit_code == 0, ok.output
    assert "knowledge.corpus" in ok.output and "blank.txt: empty file, skipped" in ok.output
    assert CliRunner().invoke(cli, ["validate", "--strict", str(task)]).exit_code == 2


def test_rows_with_other_field_names_give_one_warning_that_names_them(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"doc_id": i, "text": f"doc {i}"} for i in range(7)] + [{"id": "x", "text": "kept"}])
    corpus = load_corpus(path)
    assert [d.id for d in corpus.documents] == ["x"]
    assert corpus.warnings == [f"{path}: lines 1, 2, 3, 4, 5 and 2 more: expected an object with 'id' and 'text' (found: doc_id, text), skipped"]

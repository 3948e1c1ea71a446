"""Read a knowledge corpus (a folder of .md/.txt files, one file, or a .jsonl of {id, text}) into Documents.

Why warnings and not errors: one unreadable file in a folder of hundreds should not stop a run, but it
must not vanish silently either; every skipped file is named with the reason. A corpus with no usable
document at all is an error.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

TEXT_SUFFIXES = (".md", ".txt")


@dataclass(frozen=True)
class Document:
    id: str
    text: str


@dataclass
class Corpus:
    path: Path
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fingerprint: str = ""
    """sha256 over every file's name and bytes: editing the corpus changes every RAG trial's hash."""


def _decode(path: Path, data: bytes, warnings: list[str]) -> str | None:
    """The file's text, or None with a warning (binary, not UTF-8, empty)."""
    if b"\x00" in data:
        warnings.append(f"{path}: binary file (contains NUL bytes), skipped")
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        warnings.append(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}), skipped")
        return None
    if not text.strip():
        warnings.append(f"{path}: empty file, skipped")
        return None
    return text


def _jsonl_documents(path: Path, text: str, warnings: list[str]) -> list[Document]:
    """Documents of a .jsonl; skipped lines give one warning per reason (with their line numbers), so a
    file written with other field names says so once, not once per line."""
    docs, seen, skipped = [], set(), {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            skipped.setdefault("invalid JSON", []).append(line_no)
            continue
        if not isinstance(row, dict) or row.get("id") is None or not isinstance(row.get("text"), str):
            found = f" (found: {', '.join(map(str, row)) or 'no keys'})" if isinstance(row, dict) else " (not an object)"
            skipped.setdefault(f"expected an object with 'id' and 'text'{found}", []).append(line_no)
            continue
        doc_id = str(row["id"])
        if not row["text"].strip():
            skipped.setdefault("empty text", []).append(line_no)
        elif doc_id in seen:
            skipped.setdefault("duplicate document id", []).append(line_no)
        else:
            seen.add(doc_id)
            docs.append(Document(doc_id, row["text"]))
    for reason, lines in skipped.items():
        more = f" and {len(lines) - 5} more" if len(lines) > 5 else ""
        warnings.append(f"{path}: line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines[:5]))}{more}: {reason}, skipped")
    return docs


def _files(path: Path, warnings: list[str]) -> list[Path]:
    if path.is_file():
        return [path]
    files = []
    for p in sorted(path.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(path).parts):
            continue
        if p.suffix.lower() in TEXT_SUFFIXES:
            files.append(p)
        else:
            warnings.append(f"{p}: not a .md or .txt file, ignored")
    return files


MAX_FILE_BYTES = 64 * 2**20
"""Larger corpus files are skipped with a warning instead of being read into memory blindly."""


def load_corpus(path: Path, max_documents: int | None = None, seed: int = 0) -> Corpus:
    """All usable documents under `path` (a seeded sample of `max_documents` when there are more), read
    now: a caller that needs them twice keeps the Corpus. Raises ValueError naming the path when none is usable."""
    path = Path(path)
    corpus = Corpus(path)
    if not path.exists():
        raise ValueError(f"knowledge corpus not found: {path}")
    digest = hashlib.sha256()
    for file in _files(path, corpus.warnings):
        if file.stat().st_size > MAX_FILE_BYTES:
            corpus.warnings.append(f"{file}: {file.stat().st_size / 2**20:.0f} MB is over the {MAX_FILE_BYTES // 2**20} MB limit per file, skipped")
            continue
        data = file.read_bytes()
        digest.update(f"{file.relative_to(path) if file != path else file.name}\0{len(data)}\0".encode())
        digest.update(data)
        text = _decode(file, data, corpus.warnings)
        if text is None:
            continue
        if file.suffix.lower() == ".jsonl":
            corpus.documents += _jsonl_documents(file, text, corpus.warnings)
        else:
            doc_id = file.stem if file == path else file.relative_to(path).with_suffix("").as_posix()
            corpus.documents.append(Document(doc_id, text))
    corpus.fingerprint = digest.hexdigest()
    if max_documents is not None and len(corpus.documents) > max_documents:
        corpus.warnings.append(f"{len(corpus.documents)} documents is more than max_documents={max_documents}: "
                               f"a seeded sample of {max_documents} is indexed")
        keep = sorted(random.Random(seed).sample(range(len(corpus.documents)), max_documents))
        corpus.documents = [corpus.documents[i] for i in keep]
    if not corpus.documents:
        why = "; ".join(corpus.warnings) or "no .md, .txt or .jsonl documents found"
        raise ValueError(f"knowledge corpus {path} has no usable documents ({why})")
    return corpus

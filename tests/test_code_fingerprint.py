"""Issue 14 F8: trials are keyed on the code that measures them, not only on advisor's version."""

from __future__ import annotations

import sys

from advisor import plan


def test_a_change_to_the_measuring_code_changes_the_fingerprint(tmp_path, monkeypatch):
    package = tmp_path / "measuring"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "meter.py").write_text("SCALE = 1\n")
    monkeypatch.setattr(plan, "CODE_ROOT", tmp_path)
    monkeypatch.setattr(plan, "MEASURING_CODE", ("measuring",))
    plan.code_fingerprint.cache_clear()
    try:
        before = plan.code_fingerprint()
        assert plan.code_fingerprint() == before  # computed once per process
        (package / "meter.py").write_text("SCALE = 2\n")
        plan.code_fingerprint.cache_clear()
        assert plan.code_fingerprint() != before
    finally:
        plan.code_fingerprint.cache_clear()


def test_the_trial_hash_includes_the_code_fingerprint(classification_task, monkeypatch):
    from advisor.task import check_task

    spec, splits, _ = check_task(classification_task())
    (first, *_) = plan.make_plan(spec, splits)
    monkeypatch.setattr(plan, "code_fingerprint", lambda: "other code")
    (again, *_) = plan.make_plan(spec, splits)
    assert first.name == again.name and first.hash != again.hash


def test_the_fingerprint_hashes_our_packages_whatever_else_is_on_sys_path():
    """`contracts` is a namespace package: under pytest it also gathers tests/contracts, which comes first on sys.path;
    a worker process (a Ray task) computes the fingerprint without it, and must get the same."""
    import subprocess

    plan.code_fingerprint.cache_clear()
    here = plan.code_fingerprint()
    alone = subprocess.run([sys.executable, "-c", "from advisor.plan import code_fingerprint; print(code_fingerprint())"],
                           capture_output=True, text=True, check=True, cwd="/").stdout.strip()
    assert here == alone

"""The ten mutations of issue 35, applied by hand one at a time: each must turn its test red.

    .venv/bin/python tools/mutation_rows.py [NAME ...]

For each row: replace one line of product code, run the test that guards it, put the line
back (also on failure or Ctrl-C). Prints RED (killed) or GREEN (survived!) per row.
"""
import subprocess
import sys
from pathlib import Path

R = Path(__file__).resolve().parents[1]
# (name, file, the right line, the broken line, test file, pytest -k)
M = [
 ("merge share", "catalog/source_merge.py", "if n >= SAME_TEXT_MIN and share >= SAME_TEXT_SHARE:", "if n >= SAME_TEXT_MIN:", "tests/catalog/test_blind_spots_merge.py", "share"),
 ("feed links", "catalog/feeds.py", 'return "../" * feed_path.count("/") + target', 'return "../" * (feed_path.count("/") - 1) + target', "tests/site/test_blind_spots_site.py", "feed"),
 ("repro swap", "catalog/search.py", '("" if self.has_reproduction else "NOT ")', '("NOT " if self.has_reproduction else "")', "tests/catalog/test_blind_spots_catalog.py", "reproduction"),
 ("related incr", "catalog/related.py", "return sorted(kept + fresh, key=lambda entry: -entry[1])[:k]", "return sorted(kept, key=lambda entry: -entry[1])[:k]", "tests/catalog/test_blind_spots_catalog.py", "near_copy"),
 ("missing on disk", "catalog/sitegen/writer.py", "if self.previous.get(rel) == digest and target.exists():", "if self.previous.get(rel) == digest:", "tests/site/test_blind_spots_site.py", "deleted"),
 # two guards keep a phrase's words adjacent on PostgreSQL (<-> in the tsquery, the indexed stem pairs): break both
 ("pg phrase", "catalog/search_pg.py", ('"(" + " <-> ".join(f"{w}:{weight}" for w in words) + ")"',
                                        'pairs += [f"\'{a}_{b}\'" for a, b in zip(words, words[1:])]'),
  ('"(" + " & ".join(f"{w}:{weight}" for w in words) + ")"', 'pairs += []'),
  "tests/catalog/test_blind_spots_catalog.py", "hyphenated and postgresql"),
 ("sync stop", "catalog/ingest_url.py", "stop = None if full else newest_external_id(engine, channel)", "stop = None", "tests/catalog/test_blind_spots_catalog.py", "sync"),
 ("discussed swap", "catalog/sitegen/discovery.py", "all_time=rows(), recent=rows(since) if since else []", "all_time=rows(since) if since else [], recent=rows()", "tests/site/test_blind_spots_site.py", "discussed"),
 ("alias", "catalog/search.py", '" UNION SELECT source_id FROM source_alias WHERE lower(handle) = lower(?))"', '" UNION SELECT source_id FROM source_alias WHERE 1 = 0 AND lower(handle) = lower(?))"', "tests/catalog/test_blind_spots_catalog.py", "old_name"),
 ("shards order", "catalog/sitegen/generate.py", "post_pages=[f\"posts/{post['slug']}/index.html\" for post in cat.posts]", "post_pages=[f\"posts/{post['slug']}/index.html\" for post in reversed(cat.posts)]", "tests/site/test_blind_spots_site.py", "shards"),
]
only = sys.argv[1:]
for name, path, old, new, test, k in M:
    if only and name not in only:
        continue
    f = R / path
    src = broken = f.read_text()
    for right, wrong in zip(*((old, new) if isinstance(old, tuple) else ((old,), (new,)))):
        assert src.count(right) == 1, (name, src.count(right))
        broken = broken.replace(right, wrong)
    f.write_text(broken)
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test, "-k", k],
                           cwd=R, capture_output=True, text=True)
    finally:
        f.write_text(src)
    last = r.stdout.strip().splitlines()[-1]
    print(f"{name:16} {'RED (killed)' if r.returncode else 'GREEN (survived!)'}  {last}", flush=True)

"""`renewlm report` through the CLI entry point: the file, --versions, and bad input in one sentence."""

from renewlm.examples.synthetic import add_synthetic, write_record


def test_report_writes_one_html_file(cli, tmp_path):
    store = tmp_path / "store"
    from renewlm.store import Store

    add_synthetic(Store(store), releases=2, steps=20)
    out = tmp_path / "out" / "r.html"
    code, stdout, err = cli("report", "--out", out, "--versions", "r1,r2", "--versions", "base", "--store", store)
    assert code == 0, err
    assert f"report: {out}" in stdout.replace("\n", "")
    html = out.read_text()
    assert "3 versions (r1, r2, base)" in html and 'id="run-r2-trunk"' not in html and 'id="run-r2"' in html


def test_an_empty_store_says_what_to_run_first(cli, tmp_path):
    code, _, err = cli("report", "--out", tmp_path / "r.html", "--store", tmp_path / "empty")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "renewlm demo" in err and err.startswith("error: ")
    assert not (tmp_path / "r.html").exists()


def test_bad_out_and_unknown_versions_are_one_sentence(cli, tmp_path):
    from renewlm.store import Store

    write_record(Store(tmp_path / "s"), "only", kind="import")
    cases = ((["--out", tmp_path / "r.pdf"], "not an .html file"), (["--out", tmp_path / "r.html", "--versions", "ghost"], "'ghost'"),
             (["--out", tmp_path / "no" / "such" / "r.html"], "nor the folder above it exists"))
    for args, says in cases:
        code, _, err = cli("report", *args, "--store", tmp_path / "s")
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.glob("r.*")) == [] and not (tmp_path / "no").exists()

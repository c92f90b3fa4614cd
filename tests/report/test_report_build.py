"""The HTML document: every section, images that decode, nothing outside the file, empty sections that
say what to run, and the numbers of the records in the tables."""

import base64
import io
import math
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

from renewlm.errors import ConfigError
from renewlm.report import SECTIONS, build_report, write_report
from renewlm.store import Store
from renewlm.examples.synthetic import sweep_record, write_record


class Page(HTMLParser):
    """Section ids, image sources, every URL-bearing attribute, and the text of each section."""

    def __init__(self, text: str):
        super().__init__()
        self.sections, self.images, self.links, self.text = [], [], [], {}
        self._current = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._current = attrs["id"]
            self.sections.append(attrs["id"])
            self.text[self._current] = ""
        if tag == "img":
            self.images.append(attrs["src"])
        self.links += [v for k, v in attrs.items() if k in ("src", "href", "data", "action") and v]

    def handle_data(self, data):
        if self._current:
            self.text[self._current] += data


def decode(src: str) -> Image.Image:
    assert src.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
    image.load()
    return image


def test_every_section_and_every_image_of_a_full_store(report_store):
    page = Page(build_report(report_store))
    assert page.sections == [sid for sid, _, _ in SECTIONS]
    # per run one figure (2 real + 8 synthetic), the heatmap, core average, two sweep corpora, series, plan
    assert len(page.images) == 10 + 1 + 1 + 2 + 2
    for src in page.images:
        assert decode(src).size[0] > 200
    # self-contained: only data URIs and links within the page
    assert all(link.startswith(("data:", "#")) for link in page.links), [x[:40] for x in page.links if not x.startswith(("data:", "#"))]
    runs = page.text["runs"]
    assert "tiny-code" in runs and "held-out at the end: code" in runs
    assert "stability gap" in page.text["runs"]
    assert "pick-data" in page.text["sweeps"] and "Suggested mixture" in page.text["sweeps"]


def test_tables_hold_the_records_numbers(synthetic):
    page = Page(build_report(synthetic))
    ledger = page.text["ledger"]
    assert "base → r1 → r2 → r3" in ledger
    # The plan of the same shape: a 4,096,000-token pre-training, then 972,800 new tokens per release. Switch
    # planned: (4,096,000 + 3 × 1.1 × 972,800) / (4 × 4,096,000 + 6 × 972,800) = 33%; spent, with the
    # releases' 102,400-token decays: 34%.
    assert "renewlm plan --releases 4 --pretrain-tokens 4096000 --tokens-per-release 972800 --model r3" in ledger
    assert "switch 33%; this series as spent: 34%" in ledger
    record = sweep_record("base", ["c1", "c2"])
    mixture = record["suggested_mixture"]["phases"][0]["corpora"]
    sweeps = page.text["sweeps"]
    assert all(f"{c}: {w}" in sweeps for c, w in mixture.items())  # the YAML as written
    assert f"best LR {record['corpora']['c1']['best_lr']:.3g}" in sweeps and "18 of 18 points finished" in sweeps
    assert "left out of the mixture: it hurts" in sweeps and "heldout/c0" in sweeps and "39%" in sweeps  # the saving
    tasks = page.text["tasks"]
    assert "hellaswag (acc_norm)" in tasks and "my_qa (acc)" in tasks  # the core metric where the spec has one
    assert f"{(0.33 - 0.25) / 0.75:.3f}" in tasks
    heldout = page.text["heldout"]
    assert "+0.410" in heldout and "+0.070" in heldout  # adaptation and forgetting from evaluations.json
    assert "c1 bits/byte" in heldout and f"{3.09 / 3.5 / math.log(2):.3f}" in heldout  # base on c1: loss 3.0 + 0.05 + 0.01·4


def test_empty_sections_say_what_to_run(tmp_path):
    store = Store(tmp_path / "s")
    write_record(store, "only", kind="import")
    page = Page(build_report(store))
    assert page.sections == [sid for sid, _, _ in SECTIONS]
    assert "renewlm train RUN.yaml" in page.text["runs"]
    assert "renewlm eval V1 V2" in page.text["heldout"]
    assert "--tasks" in page.text["tasks"]
    assert "renewlm sweep NAME --from V" in page.text["sweeps"]
    assert "A series needs two releases" in page.text["ledger"]
    assert page.images == []


def test_write_report_replaces_the_file_whole_and_refuses_other_names(synthetic, tmp_path):
    out = tmp_path / "deep" / "r.html"
    assert write_report(synthetic, out) == out and out.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(ConfigError, match=r"not an \.html file"):
        write_report(synthetic, tmp_path / "r.png")
    with pytest.raises(ConfigError, match="is a folder"):
        (tmp_path / "d.html").mkdir()
        write_report(synthetic, tmp_path / "d.html")
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.html"]  # no temporary left


def test_a_long_run_is_thinned_for_drawing(synthetic):
    from renewlm.examples.synthetic import write_metrics

    write_metrics(synthetic, "r1", steps=20_000, tokens_per_step=100, corpora=["c0"], new=None, start={"c0": 3.0}, eval_every=1000)
    html = build_report(synthetic, ["r1"])
    assert "20,000 steps logged" in html and re.search(r"2,000,000 tokens, final training loss", html)

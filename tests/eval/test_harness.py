"""lm-eval on the model in memory, with local tasks only: accuracy and perplexity against hand counts."""

import builtins
import json
import math
import random
import re
import shutil
import subprocess

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from renewlm.errors import ConfigError, InputError
from renewlm.eval.cadence import Every
from renewlm.eval.harness import LmEval, require_lm_eval, run_tasks, task_manager

pytest.importorskip("lm_eval")


class FixedLogits(LlamaForCausalLM):
    """Whatever the input, the next-token logits are `self.bias`: a unigram model whose answers are known."""

    def forward(self, input_ids=None, **kwargs):
        out = super().forward(input_ids=input_ids, **kwargs)
        out.logits = torch.zeros_like(out.logits) + self.bias
        return out


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    return AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture(scope="module")
def model(tokenizer):
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256)
    torch.manual_seed(0)
    m = FixedLogits(config)
    bias = torch.zeros(len(tokenizer))
    (is_,), (not_,) = tokenizer(" is").input_ids, tokenizer(" not").input_ids  # one token each
    bias[is_] = 5.0  # " is" is the model's answer to everything
    bias[not_] = 1.0
    m.register_buffer("bias", bias)
    return m.eval()


# The answer " is" is right in docs 0, 2, 3 and wrong in docs 1 and 4: accuracy 3/5.
QUESTIONS = [
    {"q": "Water ... wet.", "choices": ["is", "not"], "label": 0},
    {"q": "Fire ... cold.", "choices": ["is", "not"], "label": 1},
    {"q": "The sky ... up.", "choices": ["not", "is"], "label": 1},
    {"q": "A fish ... wet.", "choices": ["is", "not"], "label": 0},
    {"q": "Ice ... hot.", "choices": ["not", "is"], "label": 0},
]
TEXTS = ["the cat sat on the mat", "a dog ran far away today"]


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tasks")
    (folder / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    (folder / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    (folder / "tiny_qa.yaml").write_text(f"""task: tiny_qa
dataset_path: json
dataset_kwargs: {{data_files: {{test: {folder / 'qa.jsonl'}}}}}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{q}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
target_delimiter: " "
metric_list: [{{metric: acc, aggregation: mean, higher_is_better: true}}]
""")
    (folder / "tiny_ppl.yaml").write_text(f"""task: tiny_ppl
dataset_path: json
dataset_kwargs: {{data_files: {{test: {folder / 'texts.jsonl'}}}}}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - {{metric: word_perplexity}}
  - {{metric: byte_perplexity}}
""")
    return folder


def test_accuracy_on_a_local_multiple_choice_task_is_the_hand_count(model, tokenizer, tasks):
    manager = task_manager(["tiny_qa"], [tasks])
    results = run_tasks(model, tokenizer, ["tiny_qa"], manager=manager, batch_size=4)
    assert results["tiny_qa"]["acc"] == pytest.approx(3 / 5)
    limited = run_tasks(model, tokenizer, ["tiny_qa"], manager=manager, batch_size=4, limit=2)
    assert limited["tiny_qa"]["acc"] == pytest.approx(1 / 2)  # docs 0 (right) and 1 (wrong)


def test_word_perplexity_of_a_local_text_task_is_computed_from_the_fixed_logits(model, tokenizer, tasks):
    results = run_tasks(model, tokenizer, ["tiny_ppl"], manager=task_manager(["tiny_ppl"], [tasks]), batch_size=1)
    logp = torch.log_softmax(model.bias.double(), dim=0)
    # Every token of every text is scored, each with the same fixed distribution.
    loglik = sum(float(logp[tokenizer(t).input_ids].sum()) for t in TEXTS)
    words = sum(len(re.split(r"\s+", t)) for t in TEXTS)
    assert results["tiny_ppl"]["word_perplexity"] == pytest.approx(math.exp(-loglik / words), rel=1e-4)
    chars = sum(len(t.encode()) for t in TEXTS)
    assert results["tiny_ppl"]["byte_perplexity"] == pytest.approx(math.exp(-loglik / chars), rel=1e-4)


def test_the_evaluator_flattens_numbers_and_leaves_rng_and_mode_as_they_were(model, tokenizer, tasks):
    evaluator = LmEval(tokenizer, ["tiny_qa"], include_paths=[tasks], batch_size=2, cadence=Every(every=10))
    model.train()
    random.seed(7)
    torch.manual_seed(7)
    expected = (random.random(), torch.rand(1))
    random.seed(7)
    torch.manual_seed(7)
    numbers = evaluator.evaluate(model)
    assert numbers["tiny_qa/acc"] == pytest.approx(0.6)
    assert (random.random(), torch.rand(1)) == expected  # lm-eval reseeded them inside, not after
    assert model.training
    model.eval()


def test_unknown_task_lists_close_matches(tasks):
    with pytest.raises(ConfigError, match=r"unknown lm-eval task 'tiny_qaa' \(close: tiny_qa, tiny_ppl\)"):
        task_manager(["tiny_qaa"], [tasks])


def test_missing_lm_eval_names_the_extra(monkeypatch):
    real = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name == "lm_eval" or name.startswith("lm_eval."):
            raise ModuleNotFoundError("No module named 'lm_eval'", name="lm_eval")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(InputError, match=r"pip install 'renewlm\[eval\]'"):
        require_lm_eval()


def test_outside_a_git_checkout_nothing_is_printed(model, tokenizer, tasks, tmp_path, monkeypatch, capfd):
    # lm-eval asks git for the working directory's commit; git's "fatal: not a git repository" went to fd 2.
    if shutil.which("git") is None:
        pytest.skip("git is not installed: lm-eval's lookup could not print anything")
    monkeypatch.chdir(tmp_path)
    assert subprocess.run(["git", "rev-parse"], capture_output=True, check=False).returncode != 0  # not a checkout
    capfd.readouterr()
    assert run_tasks(model, tokenizer, ["tiny_qa"], manager=task_manager(["tiny_qa"], [tasks]), batch_size=4)["tiny_qa"]["acc"] == pytest.approx(0.6)
    out, err = capfd.readouterr()
    assert "fatal" not in out + err and "git" not in err, err

"""`renewlm sample`: look at a version's outputs without writing transformers code."""

from __future__ import annotations

from typing import Annotated

import typer

from renewlm.cli.app import StoreOption, app, open_store


@app.command()
def sample(
    name: Annotated[str, typer.Argument(help="Version name.")],
    prompt: Annotated[str, typer.Option("--prompt", help="Text for the model to continue.")],
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Most tokens to generate.")] = 64,
    temperature: Annotated[float, typer.Option("--temperature", help="Sampling temperature; 0 is greedy decoding.")] = 1.0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling: keep the most likely tokens up to this probability.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same text.")] = 0,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code", help="Run the version's own model code.")] = False,
    store: StoreOption = None,
) -> None:
    """Print a version's continuation of a prompt."""
    from renewlm.model.sample import check_sampling, generate
    from renewlm.versions import load_version

    check_sampling(prompt, max_new_tokens, temperature, top_p)
    model, tokenizer = load_version(open_store(store), name, trust_remote_code=trust_remote_code)
    # plain print: the model's text may hold brackets that rich would read as markup
    print(generate(model, tokenizer, prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed))

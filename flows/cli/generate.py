"""`selfalign models prepare` and `selfalign generate`: get the model, try a backend."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from flows.cli.common import BackendOpt, ModelOpt, setup_logging, stderr
from generators.errors import SelfAlignError


def models_prepare(
    force: Annotated[bool, typer.Option(help="Convert again even if cached.")] = False,
) -> None:
    """Convert the default model (SmolLM2-135M-Instruct GGUF) to a HF folder once; print it."""
    from generators.models import prepare_default_model

    setup_logging()
    with stderr().status("preparing the default model (first time: ~20 s)"):
        path, converted = prepare_default_model(force=force)
    stderr().print(f"default model {'converted to' if converted else 'already prepared at'} {path}")
    typer.echo(str(path))


def generate(
    prompt: Annotated[
        list[str], typer.Option("--prompt", "-p", help="A user message; repeat for a batch.")
    ],
    backend: BackendOpt = "auto",
    model: ModelOpt = "default",
    system: Annotated[str | None, typer.Option(help="System message for every prompt.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Max new tokens per completion.")] = 128,
    temperature: Annotated[float, typer.Option(help="0 = greedy.")] = 0.0,
    n: Annotated[int, typer.Option("-n", help="Completions per prompt.")] = 1,
    repetition_penalty: Annotated[float, typer.Option(help="> 1 discourages repetition.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    stop: Annotated[list[str] | None, typer.Option(help="Stop string; repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per prompt.")] = False,
    base_url: Annotated[
        list[str] | None,
        typer.Option(help="Backend openai: server URL ending in /v1; repeat for a fleet."),
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Backend openai: environment variable holding the API key.")
    ] = None,
) -> None:
    """Quick check of a backend: answer a few prompts and print the completions."""
    from generators.llm import Sampling, load_backend

    setup_logging()
    sampling = Sampling(
        max_tokens=max_tokens,
        temperature=temperature,
        n=n,
        repetition_penalty=repetition_penalty,
        seed=seed,
        stop=tuple(stop or ()),
    )
    options = _server_options(backend, base_url or [], api_key_env)
    with stderr().status(f"loading backend {backend!r} with model {model!r}"):
        llm = load_backend(backend, model, **options)
    head = [{"role": "system", "content": system}] if system else []
    conversations = [head + [{"role": "user", "content": p}] for p in prompt]
    with stderr().status(f"generating {len(prompt) * n} completion(s)"):
        outputs = llm.chat(conversations, sampling)
    for failure in getattr(llm, "last_failures", ()):
        stderr().print(f"prompt {failure['index'] + 1} failed: {failure['error']}")
    for p, completions in zip(prompt, outputs, strict=True):
        if as_json:
            typer.echo(json.dumps({"prompt": p, "completions": completions, "model": llm.model_id}))
            continue
        typer.secho(f"> {p}", bold=True)
        for c in completions:
            typer.echo(c.strip() + "\n")


def _server_options(backend: str, base_urls: list[str], api_key_env: str | None) -> dict:
    """`generate`'s OpenAIBackend arguments; the server options make no sense elsewhere."""
    if backend != "openai":
        if base_urls or api_key_env:
            raise SelfAlignError("--base-url and --api-key-env need --backend openai")
        return {}
    if not base_urls:
        raise SelfAlignError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
    from generators.backends.openai import api_key_from

    return {"base_urls": base_urls, "api_key": api_key_from(api_key_env, "--api-key-env")}

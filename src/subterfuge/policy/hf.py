"""`hf:<directory>`: a local Hugging Face causal LM, for teams without a model server.

Needs the `hf` extra (transformers and torch). The model and tokenizer are
loaded from the directory only (never downloaded). Requests from concurrent
episodes are batched: one generation thread takes every request waiting, pads
them on the left and generates them together, so a GPU is used in batches
rather than one episode at a time. With vLLM installed and a CUDA device
present, vLLM's offline engine does the generation instead (same batching).

Text protocol only: tool calling from raw generations is model-specific.
Greedy decoding (`--temperature 0`) is reproducible; sampled batches are
seeded from the first request's seed, so sampling is reproducible only with
one episode in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from subterfuge.envs.base import Message
from subterfuge.policy.base import PolicyContext, Reply
from subterfuge.policy.settings import ModelSettings, Sampling, ToolProtocol

FALLBACK_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""Used when the tokenizer has no chat template of its own."""


@dataclass
class _Job:
    messages: list[dict[str, str]]
    seed: int | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Reply]


class _Generator:
    """Loads the model once and runs batched generation on its own thread."""

    def __init__(self, path: Path, sampling: Sampling, max_batch: int, use_vllm: bool) -> None:
        self.path, self.sampling, self.max_batch = path, sampling, max_batch
        self.use_vllm = use_vllm
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        threading.Thread(target=self._main, name=f"hf:{path.name}", daemon=True).start()

    async def generate(self, messages: list[dict[str, str]], seed: int | None) -> Reply:
        loop = asyncio.get_running_loop()
        job = _Job(messages, seed, loop, loop.create_future())
        self._jobs.put(job)
        return await job.future

    # --- the generation thread ---------------------------------------------------------------

    def _main(self) -> None:
        try:
            backend = self._load()
        except BaseException as exc:  # reported to every request
            self._error = exc
            backend = None
        while True:
            batch = [self._jobs.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            if backend is None:
                for job in batch:
                    _settle(job, error=self._error)
                continue
            try:
                replies = backend(batch)
            except BaseException as exc:
                for job in batch:
                    _settle(job, error=exc)
                continue
            for job, reply in zip(batch, replies, strict=True):
                _settle(job, reply=reply)

    def _load(self) -> Any:
        if self.use_vllm:
            return self._load_vllm()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        if not getattr(tok, "chat_template", None):
            tok.chat_template = FALLBACK_TEMPLATE
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model: Any = AutoModelForCausalLM.from_pretrained(
            self.path, local_files_only=True, dtype="auto"
        )
        model.to(device)
        model.eval()
        s = self.sampling

        def run(batch: list[_Job]) -> list[Reply]:
            texts = [
                tok.apply_chat_template(j.messages, tokenize=False, add_generation_prompt=True)
                for j in batch
            ]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to(device)
            sample = bool(s.temperature)
            kwargs: dict[str, Any] = {"max_new_tokens": s.max_tokens, "do_sample": sample}
            if sample:
                kwargs["temperature"] = s.temperature
                if s.top_p is not None:
                    kwargs["top_p"] = s.top_p
                if batch[0].seed is not None:
                    torch.manual_seed(batch[0].seed)
            with torch.inference_mode():
                out = model.generate(**enc, **kwargs, pad_token_id=tok.pad_token_id)
            start = enc["input_ids"].shape[1]
            replies = []
            for row, mask in zip(out[:, start:], enc["attention_mask"], strict=True):
                ids = row.tolist()
                n = len(ids)
                for stop in (tok.eos_token_id, tok.pad_token_id):
                    if stop is not None and stop in ids:
                        n = min(n, ids.index(stop) + 1)
                text = str(tok.decode(ids[:n], skip_special_tokens=True))
                finish = "length" if n == len(ids) and n >= s.max_tokens else None
                usage = {"input": int(mask.sum()), "output": n}
                replies.append(Reply(text, None, usage, finish=finish))
            return replies

        return run

    def _load_vllm(self) -> Any:
        vllm = importlib.import_module("vllm")  # optional; imported by name (no stubs needed)
        llm = vllm.LLM(model=str(self.path))
        s = self.sampling

        def run(batch: list[_Job]) -> list[Reply]:
            params = [
                vllm.SamplingParams(
                    temperature=s.temperature or 0.0,
                    top_p=s.top_p or 1.0,
                    max_tokens=s.max_tokens,
                    seed=j.seed,
                )
                for j in batch
            ]
            outputs = llm.chat([j.messages for j in batch], params, use_tqdm=False)
            replies = []
            for o in outputs:
                gen = o.outputs[0]
                usage = {"input": len(o.prompt_token_ids or []), "output": len(gen.token_ids)}
                finish = "length" if gen.finish_reason == "length" else None
                replies.append(Reply(gen.text, None, usage, finish=finish))
            return replies

        return run


def _settle(job: _Job, reply: Reply | None = None, error: BaseException | None = None) -> None:
    def apply() -> None:
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(RuntimeError(f"local model failed: {error!r}"))
        else:
            job.future.set_result(reply)  # type: ignore[arg-type]

    # A caller whose loop has closed meanwhile gets nothing; the generation thread goes on.
    with contextlib.suppress(RuntimeError):
        job.loop.call_soon_threadsafe(apply)


def vllm_usable() -> bool:
    """vLLM is installed and a CUDA device is visible."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


class HFPolicy:
    """A causal LM from a local directory, generated in batches on one thread."""

    provider = "hf"

    def __init__(
        self, path: str, settings: ModelSettings | None = None, use_vllm: bool | None = None
    ) -> None:
        self.settings = settings or ModelSettings()
        if self.settings.protocol is not ToolProtocol.TEXT:
            raise ValueError("hf: models run with --protocol text only")
        if importlib.util.find_spec("transformers") is None:
            raise ValueError("hf: models need the 'hf' extra: pip install 'subterfuge[hf]'")
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise ValueError(f"hf: {path} is not a model directory (no config.json)")
        self.use_vllm = vllm_usable() if use_vllm is None else use_vllm
        self._generator: _Generator | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.path}"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_generator"], state["_lock"] = None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _engine(self) -> _Generator:
        with self._lock:
            if self._generator is None:
                self._generator = _Generator(
                    self.path, self.settings.sampling, self.settings.max_requests, self.use_vllm
                )
            return self._generator

    async def act(self, context: PolicyContext) -> Reply:
        seed = self.settings.sampling.request_seed(context.episode, context.turn)
        return await self._engine().generate(chat(context.messages), seed)


def chat(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]

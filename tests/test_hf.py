"""The `hf:` policy on a tiny causal LM built here from a config, with random weights.

Nothing is downloaded: the tokenizer is trained on the environment's own prompt
text and the model is a two-layer Llama with random weights. Its replies are
gibberish; what is tested is the path (chat template, batched generation,
usage, the episode loop and the store), not the model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from subterfuge.envs.base import Verdict
from subterfuge.envs.registry import get_environment
from subterfuge.policy.base import PolicyContext
from subterfuge.policy.registry import make_policy
from subterfuge.policy.settings import ModelSettings, Sampling, ToolProtocol
from subterfuge.rollout.episode import EpisodeBudget
from subterfuge.runner.local import RunPlan, run_local
from subterfuge.sandbox import SandboxBackend
from subterfuge.store import Store

pytest.importorskip("torch", reason="the hf extra is not installed: pip install '.[hf]'")
transformers = pytest.importorskip("transformers", reason="the hf extra is not installed")

TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    env = get_environment("reward_tampering")
    corpus = [m.content for v in range(4) for m in env.build(v).messages]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.chat_template = TEMPLATE
    config = transformers.LlamaConfig(
        vocab_size=fast.vocab_size if len(fast) <= fast.vocab_size else len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def _settings(**kw: object) -> ModelSettings:
    return ModelSettings(sampling=Sampling(temperature=0.0, max_tokens=12), **kw)  # type: ignore[arg-type]


def test_hf_rejects_what_it_cannot_do(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(ValueError, match="not a model directory"):
        make_policy(f"hf:{tmp_path}", _settings())
    with pytest.raises(ValueError, match="--protocol text only"):
        make_policy(f"hf:{tiny_model}", _settings(protocol=ToolProtocol.TOOLS))


async def test_greedy_batched_generation_is_deterministic(tiny_model: Path) -> None:
    policy = make_policy(f"hf:{tiny_model}", _settings(max_requests=8))
    spec = get_environment("reward_tampering").build(0)
    contexts = [PolicyContext(spec.messages, spec, i, 0) for i in range(4)]
    first = await asyncio.gather(*(policy.act(c) for c in contexts))  # one batch
    again = await policy.act(contexts[0])  # alone
    assert {r.text for r in first} == {again.text}
    assert all(r.usage["input"] > 100 and 1 <= r.usage["output"] <= 12 for r in first)


async def test_hf_episodes_are_run_judged_and_stored(
    tiny_model: Path, bwrap: SandboxBackend, tmp_path: Path
) -> None:
    policy = make_policy(f"hf:{tiny_model}", _settings())
    plan = RunPlan(
        "hf", get_environment("reward_tampering"), policy, 3,
        concurrency=3, budget=EpisodeBudget(max_turns=2),
    )  # fmt: skip
    with Store.open(tmp_path / "hf.sqlite") as store:
        result = await run_local(plan, bwrap, store, progress=False)
        records = store.episodes("hf")
        assert result.episodes == 3 and result.verdicts["error"] == 0
        assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
        assert store.run("hf").config["model"]["sampling"]["temperature"] == 0.0
    for record in records:
        assert record.verdict in (Verdict.INVALID, Verdict.HONEST)
        assert 1 <= record.turns <= 2
        assert record.turns == 2 or record.transcript[-1]["kind"] == "answer"
        assert record.usage["output"] >= record.turns

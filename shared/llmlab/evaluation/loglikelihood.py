"""Log-probabilities of continuations, computed the way lm-evaluation-harness computes them.

Every multiple-choice score rests on one number per option: log P(option | prompt), the sum of
the log-probabilities of the option's tokens, each given the prompt and the option's tokens
before it. Harnesses differ in small details that change scores, so this module follows
lm-evaluation-harness (``lm_eval/api/model.py``, ``_encode_pair`` and ``loglikelihood``;
``lm_eval/models/huggingface.py``, ``_loglikelihood_tokens``) exactly:

- trailing spaces of the context move onto the continuation (``"Answer: "`` + ``"Paris"`` is
  scored as ``"Answer:"`` + ``" Paris"``, one token, as the model would write it);
- context + continuation are encoded whole, without special tokens; the separately encoded
  context's tokens are the prefix and the rest of the whole encoding is the continuation;
- an empty context is replaced by the prefix token (BOS, else end-of-text).

Covers: ``encode_pair``, ``continuation_logprob`` (the definition, one forward pass per
continuation, as the harness runs it), ``choice_logprobs(lm, context, choices)`` and its batched
form ``batch_choice_logprobs`` (-> ``ChoiceLogprobs``, with the work counted): every context is
read **once** (its keys and values kept) and all its options are read on top of it, items are
batched, and a beginning every prompt shares (an instruction, few-shot examples) is read once
per call. Tested to give the definition's numbers (to float rounding, ~1e-5).
``generate=n`` also decodes n tokens greedily from the same cache (HELM-style answers).

Leaves out: contexts longer than the model's window (an error here; the harness cuts them from
the left), models whose logits are not ``lm_head(hidden)`` (soft-capped logits, e.g. Gemma 2),
rolling log-likelihoods of long documents (perplexity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmlab.decoding.batching import common_prefix_length
from llmlab.decoding.kv_cache import cache_tensors, cached_forward, make_cache

if TYPE_CHECKING:
    import torch

    from llmlab.runtime.models import LM


# --- log-probabilities of continuations --------------------------------------------------------


def _tokenizer(lm_or_tokenizer: Any) -> Any:
    return getattr(lm_or_tokenizer, "tokenizer", lm_or_tokenizer)


def prefix_token_id(tokenizer: Any) -> int:
    """What lm-eval reads before a continuation that has no context: BOS, else end-of-text."""
    tok = _tokenizer(tokenizer)
    return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) exactly as lm-eval's ``_encode_pair`` (causal models).

    ``encode_pair(tok, "Answer: ", "Paris")`` scores ``" Paris"`` after ``"Answer:"``: the space
    moves to the continuation, where the tokenizer glues it to the word (one token, not two).
    An empty context is lm-eval's special case: the prefix token (BOS or end-of-text) stands in.
    """
    tok = _tokenizer(tokenizer)
    if not isinstance(context, str) or not isinstance(continuation, str):
        raise TypeError("context and continuation must be strings.")
    if context == "":
        ids = tok.encode(continuation, add_special_tokens=False)
        if not ids:
            raise ValueError("The continuation is empty: there is nothing to score.")
        start = prefix_token_id(tok)
        return ([start], ids) if ids[0] != start else (ids[:1], ids[1:])
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = tok.encode(context + continuation, add_special_tokens=False)
    context_ids = tok.encode(context, add_special_tokens=False)
    continuation_ids = whole[len(context_ids) :]
    if not continuation_ids:
        raise ValueError(f"The continuation {continuation!r} adds no tokens: nothing to score.")
    return context_ids, continuation_ids


def continuation_logprob(lm: LM, context: str, continuation: str) -> float:
    """log P(continuation | context): the definition, one forward pass, as lm-eval runs it.

    Feeds ``(context ids + continuation ids)[:-1]`` and sums, at each continuation position, the
    log-softmax of the logits at the token that follows. The slow, plain reference that
    ``batch_choice_logprobs`` is tested against.
    """
    import torch

    context_ids, continuation_ids = encode_pair(lm, context, continuation)
    ids = torch.tensor([(context_ids + continuation_ids)[:-1]])  # (1, T)
    out, _ = cached_forward(lm.model, ids)
    n = len(continuation_ids)
    logprobs = torch.log_softmax(out.logits[0, -n:].float(), dim=-1)  # (n, V)
    return float(logprobs[torch.arange(n), torch.tensor(continuation_ids)].sum())


@dataclass
class ChoiceLogprobs:
    """What ``batch_choice_logprobs`` returns: the numbers and the work it took.

    ``logprobs[i][j]``: log P(choice j | context i); ``lengths[i][j]``: its number of tokens.
    ``generated[i]``: what greedy decoding writes after context i (only if asked for).
    ``tokens_read``: token positions the model computed (shared beginning once, each context
    once, each option once, each generated token once; padding included).
    ``tokens_separately``: what scoring every (context, option) pair on its own reads, as
    lm-eval does. ``forward_passes``: model calls.
    """

    logprobs: list[list[float]]
    lengths: list[list[int]]
    generated: list[str] = field(default_factory=list)
    tokens_read: int = 0
    tokens_separately: int = 0
    forward_passes: int = 0


Request = tuple[str, Sequence[str]]  # (context, choices)


def _check_requests(requests: Sequence[Request]) -> list[tuple[str, list[str]]]:
    if isinstance(requests, tuple) and len(requests) == 2 and isinstance(requests[0], str):
        raise TypeError("requests must be a list of (context, choices) pairs, not one pair.")
    out = []
    for k, req in enumerate(requests):
        context, choices = req
        if isinstance(choices, str):
            raise TypeError(f"Request {k}: choices must be a list of strings, not one string.")
        choices = list(choices)
        if not choices:
            raise ValueError(f"Request {k}: the list of choices is empty; give at least one.")
        out.append((context, choices))
    return out


def batch_choice_logprobs(
    lm: LM,
    requests: Sequence[Request],
    *,
    batch_tokens: int = 2048,
    generate: int = 0,
    progress: bool = False,
) -> ChoiceLogprobs:
    """``choice_logprobs`` for many (context, choices) requests at once; same numbers, less work.

    1. Every request is encoded with ``encode_pair``. The beginning that all contexts share is
       read once (1 row) and its keys/values reused by every batch.
    2. Contexts are sorted by length and batched (about ``batch_tokens`` positions per pass);
       each batch reads its contexts once, left-padded so their last tokens line up: the logits
       there give every option's first token.
    3. The options' tokens but their last are read on top of their context's cache, options of
       similar length together (each group gets a copy of its contexts' rows of the cache);
       the logits there give their later tokens. Options of one token need no pass at all
       (the letters " A".." D"), and the vocabulary head runs only where a token is scored.

    ``generate=n`` also decodes ``n`` tokens greedily after every context, on top of the same
    cache (``generated``: the texts ``llmlab.decoding.batching.generate_batch`` writes for the
    same prompts, without reading the prompts a second time). That is how the HELM-style
    ``score_generate`` gets its answers here for the price of ``n`` one-token steps.
    """
    import torch

    reqs = _check_requests(requests)
    tok, model = lm.tokenizer, lm.model
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    encoded = []  # per request: (context ids, [continuation ids per choice])
    separately = 0
    for context, choices in reqs:
        pairs = [encode_pair(tok, context, c) for c in choices]
        context_ids = pairs[0][0]  # the same for every choice: only the context decides it
        conts = [p[1] for p in pairs]
        limit = lm.model.config.max_position_embeddings
        if len(context_ids) + max(map(len, conts)) - 1 > limit:
            raise ValueError(
                f"A prompt of {len(context_ids)} tokens plus its longest option does not fit the "
                f"model's {limit}-token window: shorten the context (fewer few-shot examples)."
            )
        encoded.append((context_ids, conts))
        separately += sum(len(context_ids) + len(c) - 1 for c in conts)

    if isinstance(generate, bool) or not isinstance(generate, int) or generate < 0:
        raise ValueError(f"generate must be a number of tokens >= 0, got {generate!r}.")
    result = ChoiceLogprobs(
        logprobs=[[0.0] * len(c) for _, c in encoded],
        lengths=[[len(x) for x in c] for _, c in encoded],
        generated=[""] * len(encoded) if generate else [],
        tokens_separately=separately,
    )
    if not encoded:
        return result

    # 1. the beginning every context shares (keep >= 1 own token per context)
    shared = common_prefix_length([ctx for ctx, _ in encoded]) if len(encoded) > 1 else 0
    prefix_kvs = None
    if shared:
        _, cache = cached_forward(
            model, torch.tensor([encoded[0][0][:shared]]), logits_to_keep=1
        )  # (1, S)
        prefix_kvs = cache_tensors(cache)  # per layer: (1, kv_heads, S, head_dim)
        result.tokens_read += shared
        result.forward_passes += 1

    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))  # longest first
    batches, current = [], []
    for i in order:
        width = len(encoded[(current or [i])[0]][0]) - shared  # the batch's longest context
        if current and (len(current) + 1) * width > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(encoded), desc="scoring", unit="item")
    for batch in batches:
        _score_batch(lm, encoded, batch, shared, prefix_kvs, pad, generate, batch_tokens, result)
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return result


def _score_batch(
    lm: LM,
    encoded: list[tuple[list[int], list[list[int]]]],
    batch: list[int],
    shared: int,
    prefix_kvs: list | None,
    pad: int,
    generate: int,
    budget: int,
    result: ChoiceLogprobs,
) -> None:
    import torch

    model = lm.model
    tails = [encoded[i][0][shared:] for i in batch]
    width = max(map(len, tails))
    b = len(batch)
    feed = torch.tensor([[pad] * (width - len(t)) + t for t in tails])  # (b, W) left-padded
    mask = torch.tensor(
        [[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails]
    )  # (b, S+W)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]  # (b, W): real tokens count on
    cache = None
    if prefix_kvs is not None:  # every row starts from the shared beginning (a view, no copy)
        cache = make_cache(
            model, [(k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)) for k, v in prefix_kvs]
        )
    out, cache = cached_forward(
        model, feed, cache, attention_mask=mask, position_ids=positions, logits_to_keep=1
    )
    result.tokens_read += b * width
    result.forward_passes += 1
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (b, V): each option's 1st token
    context_kvs = cache_tensors(cache)  # per layer: (b, kv_heads, S+W, head_dim)
    next_position = positions[:, -1] + 1  # (b,)
    if generate:
        _greedy(lm, batch, first, context_kvs, mask, next_position, generate, result)

    pairs = []  # (row in the batch, request, choice, tokens) of options longer than one token
    for row, i in enumerate(batch):
        for j, cont in enumerate(encoded[i][1]):
            result.logprobs[i][j] = float(first[row, cont[0]])
            if len(cont) > 1:
                pairs.append((row, i, j, cont))
    # 3. the options' later tokens: similar lengths together (at most a fifth of padding), each
    # group on a copy of its contexts' rows of the cache
    pairs.sort(key=lambda p: len(p[3]))
    group: list = []
    real = 0  # tokens the group really needs
    for pair in [*pairs, None]:
        if pair is not None:
            need = len(pair[3]) - 1  # the longest so far: pairs come shortest first
            padded = (len(group) + 1) * need
            if not group or (padded <= budget and padded <= 1.25 * (real + need)):
                group.append(pair)
                real += need
                continue
        _score_options(lm, group, context_kvs, mask, next_position, pad, result)
        group, real = ([pair], len(pair[3]) - 1) if pair is not None else ([], 0)


def _score_options(
    lm: LM,
    group: list,
    context_kvs: list,
    mask: torch.Tensor,
    next_position: torch.Tensor,
    pad: int,
    result: ChoiceLogprobs,
) -> None:
    """Read each option's tokens but its last on top of its context; add the log-probabilities
    of its 2nd..last tokens. Logits only where a token is scored (the vocabulary is 49k wide)."""
    import torch

    if not group:
        return
    rows = torch.tensor([p[0] for p in group])  # (g,): which context each option continues
    conts = [p[3] for p in group]
    longest = max(map(len, conts)) - 1
    feed = torch.tensor([c[:-1] + [pad] * (longest + 1 - len(c)) for c in conts])  # (g, L)
    own = torch.tensor([[1] * (len(c) - 1) + [0] * (longest + 1 - len(c)) for c in conts])  # (g, L)
    cache = make_cache(lm.model, [(k[rows], v[rows]) for k, v in context_kvs])  # copies g rows
    decoder = lm.model.get_decoder()  # the transformer without its vocabulary head
    out, _ = cached_forward(
        decoder,
        feed,
        cache,
        attention_mask=torch.cat([mask[rows], own], dim=-1),  # (g, S+W+L)
        position_ids=next_position[rows][:, None] + torch.arange(longest)[None, :],  # (g, L)
    )
    result.tokens_read += feed.numel()
    result.forward_passes += 1
    real = own.bool()  # (g, L)
    hidden = out.last_hidden_state[real]  # (m, C): only positions that predict a real token
    targets = torch.tensor([t for c in conts for t in c[1:]])  # (m,) in the same order
    head = lm.model.get_output_embeddings()
    picked = []
    with torch.inference_mode():
        for start in range(0, len(targets), 256):  # (256, V) logits at a time: ~50 MB
            logits = head(hidden[start : start + 256]).float()  # (k, V)
            t = targets[start : start + 256]
            picked.append(logits.gather(-1, t[:, None])[:, 0] - logits.logsumexp(-1))  # (k,)
    per_position = torch.cat(picked).tolist()  # (m,)
    k = 0
    for _, i, j, cont in group:
        result.logprobs[i][j] += sum(per_position[k : k + len(cont) - 1])
        k += len(cont) - 1


def _greedy(
    lm: LM,
    batch: list[int],
    first: torch.Tensor,
    context_kvs: list,
    mask: torch.Tensor,
    next_position: torch.Tensor,
    n: int,
    result: ChoiceLogprobs,
) -> None:
    """Greedy decoding of ``n`` tokens after each context of the batch, from its cache."""
    import torch

    from llmlab.decoding.chat_template import stop_token_ids

    stops = stop_token_ids(lm)
    tokens = first.argmax(-1)  # (b,)
    written = [[t] for t in tokens.tolist()]
    cache = make_cache(lm.model, context_kvs)  # a fresh view: the options still need the original
    for step in range(1, n):
        mask = torch.cat([mask, torch.ones(len(batch), 1, dtype=mask.dtype)], dim=-1)  # (b, T+1)
        out, cache = cached_forward(
            lm.model,
            tokens[:, None],  # (b, 1)
            cache,
            attention_mask=mask,
            position_ids=(next_position + step - 1)[:, None],  # (b, 1)
            logits_to_keep=1,
        )
        result.tokens_read += len(batch)
        result.forward_passes += 1
        tokens = out.logits[:, -1].argmax(-1)  # (b,)
        for row, t in enumerate(tokens.tolist()):
            if not written[row] or written[row][-1] not in stops:
                written[row].append(t)
    for row, i in enumerate(batch):
        ids = written[row]
        if any(t in stops for t in ids):
            ids = ids[: next(k for k, t in enumerate(ids) if t in stops) + 1]
        result.generated[i] = lm.tokenizer.decode(ids, skip_special_tokens=True)


def choice_logprobs(lm: LM, context: str, choices: Sequence[str]) -> list[float]:
    """log P(choice | context) for each choice, as lm-evaluation-harness computes it.

    The context is read once and all choices are scored on top of it in one batch.
    ``choice_logprobs(lm, "The capital of France is", [" Paris", " Rome"])`` -> two floats,
    the first larger. An empty list of choices is a ``ValueError``.
    """
    return batch_choice_logprobs(lm, [(context, choices)]).logprobs[0]

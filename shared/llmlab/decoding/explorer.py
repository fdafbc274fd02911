"""The Token Probability Explorer's logic: watch a language model pick its next token, step by step.

Covers:
- ``Explorer``: the state of one exploration (the tokens so far, the sampling settings) with
  ``view()`` (the next-token distribution before and after temperature / top-k / top-p / min-p),
  ``step()`` (sample, or force a token you choose, which branches the continuation) and ``undo()``.
- ``explore(lm, prompt, ...)``: the same without widgets -- runs N steps, returns every step.
- ``distributions(logits, settings)``: the model's own distribution, after temperature, and the
  one really drawn from (``llmlab.decoding.sampling.sampling_distribution``, the one sampling pipeline).
- ``token_to_id``: a token given as an id or as one-token text (``" Paris"``).

Each step reads only the new token (a KV cache, cut back on undo) and every distribution is
remembered, so undo and slider moves are instant. The model's own probabilities (temperature 1,
nothing cut) are what colours and entropies show; the settings only change which token is drawn.

Leaves out: pictures (``llmlab.views.explorer_plots``, ``llmlab.views.gltr``), the widget app
(``llmlab.views.explorer_app``), repetition penalties, beam search, batching.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmlab.decoding.chat_template import encode_prompt, stop_token_ids
from llmlab.decoding.context_window import check_fits
from llmlab.decoding.kv_cache import cache_tensors, cached_forward, make_cache
from llmlab.decoding.sampling import (
    apply_temperature,
    check_settings,
    entropy,
    sampling_distribution,
)

if TYPE_CHECKING:
    import torch

    from llmlab.runtime.models import LM


# --- records ----------------------------------------------------------------------------------


@dataclass
class Settings:
    """How the next token is drawn. ``temperature=0`` is greedy; ``None`` (or top-k 0) = filter off."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None

    def check(self) -> None:
        """Raise ``ValueError`` (with the valid range) for a bad setting."""
        check_settings(self.temperature, self.top_k, self.top_p, self.min_p)


@dataclass
class Row:
    """One candidate token: the model's probability, after temperature, and after the filters."""

    token: str
    token_id: int
    prob: float  # the model's own softmax (temperature 1)
    tempered: float  # after temperature, before any filter
    final: float  # what is really drawn from: filters applied, renormalized (0 if cut)
    kept: bool

    @property
    def label(self) -> str:
        """The chance this token is drawn now; a cut token says so: ``'34%'``, ``'0% (cut from 12%)'``.

        The chart and the candidate buttons both show this label, so they always agree.
        """
        if self.kept:
            return f"{self.final:.0%}"
        return f"0% (cut from {self.tempered:.0%})"


@dataclass
class View:
    """The next-token distribution at one point: top rows plus summary numbers."""

    rows: list[Row]  # the top candidates after temperature, most likely first
    entropy: float  # bits, the model's own distribution
    entropy_final: float  # bits, the distribution actually drawn from
    n_kept: int  # how many tokens of the whole vocabulary survive the filters
    n_vocab: int  # how many tokens there are in all
    settings: Settings


@dataclass
class ExploreStep:
    """One generated token and what the model thought of it."""

    token_id: int
    token: str
    prob: float  # the model's own probability for this token
    rank: int  # 1 = the model's favourite
    entropy: float  # bits: how unsure the model was at this step
    final_prob: float  # its probability in the distribution drawn from (0 if forced and cut)
    forced: bool  # True if you chose it instead of the dice
    view: View


@dataclass
class Exploration:
    """What ``explore`` returns: the prompt, every step, the text
    (``llmlab.views.explorer_plots.plot_exploration`` draws it)."""

    prompt_ids: list[int]
    steps: list[ExploreStep]
    text: str


# --- the explorer -----------------------------------------------------------------------------


class Explorer:
    """Step through generation one token at a time; force any token to branch.

    >>> ex = Explorer(lm, "The capital of France is", Settings(temperature=0))
    >>> ex.view().rows[0].token, ex.step().token   # (' Paris', ' Paris')
    """

    def __init__(
        self,
        lm: LM,
        prompt: str | Sequence[int],
        settings: Settings | None = None,
        seed: int = 0,
        chat: bool = False,
        n_candidates: int = 10,
    ) -> None:
        import torch

        self.lm = lm
        self.settings = settings or Settings()
        self.settings.check()
        if not isinstance(n_candidates, int) or isinstance(n_candidates, bool) or n_candidates < 1:
            raise ValueError(f"n_candidates must be an integer >= 1, got {n_candidates!r}.")
        self.n_candidates = n_candidates
        self.prompt_ids = encode_prompt(lm, prompt, chat=chat)
        check_fits(lm, len(self.prompt_ids), 1)
        self.steps: list[ExploreStep] = []
        self.rng = torch.Generator().manual_seed(seed)
        self._logits: dict[tuple[int, ...], torch.Tensor] = {}  # prefix -> next-token logits
        self._cache: tuple[list[int], list] | None = None  # (ids, per-layer keys/values)
        self._stop = stop_token_ids(lm)

    @property
    def ids(self) -> list[int]:
        """Prompt + generated token ids."""
        return self.prompt_ids + [s.token_id for s in self.steps]

    @property
    def done(self) -> bool:
        """True once the model has written its end-of-sequence token."""
        return bool(self.steps) and self.steps[-1].token_id in self._stop

    def text(self) -> str:
        """The generated text so far (without the prompt)."""
        return self.lm.tokenizer.decode([s.token_id for s in self.steps], skip_special_tokens=True)

    def logits(self) -> torch.Tensor:
        """The model's scores for the next token, shape ``(vocab_size,)`` (cached per prefix)."""
        key = tuple(self.ids)
        if key not in self._logits:
            self._logits[key] = self._forward(list(key))
        return self._logits[key]

    def _forward(self, ids: list[int]) -> torch.Tensor:
        """Next-token logits for ``ids``, reading only the tokens the KV cache does not hold yet."""
        import torch

        check_fits(self.lm, len(ids), 1)
        n, kvs = 0, []
        if self._cache is not None:  # reuse the longest common prefix (undo = cut the cache)
            old_ids, kvs = self._cache
            while n < min(len(old_ids), len(ids) - 1) and old_ids[n] == ids[n]:
                n += 1
        cache = make_cache(self.lm.model, kvs, n_tokens=n) if n else None
        new = torch.tensor([ids[n:]])  # (1, new tokens)
        out, cache = cached_forward(self.lm.model, new, cache, logits_to_keep=1)
        self._cache = (ids, cache_tensors(cache))  # each (1, kv_heads, len(ids), head_dim)
        return out.logits[0, -1].float()  # (V,)

    def read_ahead(self, token_ids: Sequence[int]) -> None:
        """Read ids + ``token_ids`` in ONE forward pass, keeping the next-token logits after every
        prefix: forcing those tokens one by one (scoring a given text) then runs no more passes."""
        import torch

        ids = self.ids + list(token_ids)
        check_fits(self.lm, len(ids), 1)
        out, _ = cached_forward(self.lm.model, torch.tensor([ids]))  # logits (1, T, V)
        for t in range(len(self.ids) - 1, len(ids)):  # logits at t predict token t + 1
            self._logits[tuple(ids[: t + 1])] = out.logits[0, t].float()

    def distributions(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(model probs, after temperature, after filters) -- each ``(vocab_size,)``."""
        return distributions(self.logits(), self.settings)

    def view(self) -> View:
        """The next-token distribution now, as rows for a table or a bar chart."""
        probs, tempered, final = self.distributions()
        return _view(self.lm, probs, tempered, final, self.settings, self.n_candidates)

    def step(self, token: int | str | None = None) -> ExploreStep:
        """Add one token: drawn with the current settings, or ``token`` (id or text) if given."""
        import torch

        if self.done:
            raise ValueError("The model already ended the text; undo() or start a new Explorer.")
        probs, tempered, final = self.distributions()
        if token is None:
            token_id = int(torch.multinomial(final, 1, generator=self.rng))
        else:
            token_id = token_to_id(self.lm, token)
        order = torch.argsort(probs, descending=True, stable=True)  # (V,) most likely first
        step = ExploreStep(
            token_id=token_id,
            token=self.lm.tokenizer.decode([token_id]),
            prob=float(probs[token_id]),
            rank=int((order == token_id).nonzero()[0, 0]) + 1,
            entropy=entropy(probs),
            final_prob=float(final[token_id]),
            forced=token is not None,
            view=_view(self.lm, probs, tempered, final, self.settings, self.n_candidates),
        )
        self.steps.append(step)
        return step

    def undo(self) -> ExploreStep | None:
        """Remove the last token (to try another branch); returns it, or None if there was none."""
        return self.steps.pop() if self.steps else None


def distributions(
    logits: torch.Tensor, settings: Settings
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Model probs, temperature-adjusted probs, and the filtered + renormalized draw distribution."""
    import torch

    probs = torch.softmax(logits.float(), -1)  # (V,)
    tempered = apply_temperature(logits, settings.temperature)  # (V,)
    s = settings
    final = sampling_distribution(logits, s.temperature, s.top_k, s.top_p, s.min_p)  # (V,)
    return probs, tempered, final


def _view(
    lm: LM,
    probs: torch.Tensor,
    tempered: torch.Tensor,
    final: torch.Tensor,
    settings: Settings,
    n: int,
) -> View:
    import torch

    top = torch.topk(probs, min(n, probs.shape[-1])).indices.tolist()  # same order as tempered
    rows = [
        Row(
            token=lm.tokenizer.decode([i]),
            token_id=i,
            prob=float(probs[i]),
            tempered=float(tempered[i]),
            final=float(final[i]),
            kept=bool(final[i] > 0),
        )
        for i in top
    ]
    n_kept = int((final > 0).sum())
    return View(
        rows=rows,
        entropy=entropy(probs),
        entropy_final=entropy(final),
        n_kept=n_kept,
        n_vocab=int(probs.shape[-1]),
        settings=settings,
    )


def token_to_id(lm: LM, token: int | str) -> int:
    """A token id from an id or from text that is exactly one token (e.g. ``" Paris"``)."""
    vocab = len(lm.tokenizer)
    if isinstance(token, int) and not isinstance(token, bool):
        if not 0 <= token < vocab:
            raise ValueError(f"Token id must be in [0, {vocab}), got {token}.")
        return token
    if isinstance(token, str):
        ids = lm.tokenizer(token, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            pieces = [lm.tokenizer.decode([i]) for i in ids]
            raise ValueError(
                f"{token!r} is {len(ids)} tokens {pieces}, not one. Force one token at a time "
                "(mind the leading space: ' Paris' and 'Paris' are different tokens)."
            )
        return int(ids[0])
    raise ValueError(f"A token is an id (int) or a one-token string, got {token!r}.")


def explore(
    lm: LM,
    prompt: str | Sequence[int],
    steps: int = 8,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    forced: Mapping[int, int | str] | None = None,
    seed: int = 0,
    chat: bool = False,
    n_candidates: int = 10,
) -> Exploration:
    """Generate ``steps`` tokens, recording each step's candidates; ``forced={2: " Lyon"}`` makes
    step 2 (counting from 0) take that token instead of drawing one. The widget-free explorer."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}.")
    forced = dict(forced or {})
    if any(not 0 <= i < steps for i in forced):
        raise ValueError(f"forced step numbers must be in [0, {steps}), got {sorted(forced)}.")
    ex = Explorer(
        lm,
        prompt,
        Settings(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p),
        seed,
        chat,
        n_candidates,
    )
    check_fits(lm, len(ex.prompt_ids), steps)
    if len(forced) == steps:  # every token given (scoring a text): one forward pass for all
        ex.read_ahead([token_to_id(lm, forced[i]) for i in range(steps)])
    for i in range(steps):
        ex.step(forced.get(i))
        if ex.done:
            break
    return Exploration(prompt_ids=ex.prompt_ids, steps=ex.steps, text=ex.text())
